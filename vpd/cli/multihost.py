"""``python -m vpd.cli.multihost <vpd command> …``: join a multi-host JAX job, then run the command.

    python -m vpd.cli.multihost train --data DS --model tiny --out CKPT --mesh data=4,fsdp=2 …

The job is joined (:func:`vpd.distill.vlm_multihost.initialize`: ``JAX_COORDINATOR_ADDRESS`` /
``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``, or ``VPD_MULTIHOST=auto`` on TPU pods and SLURM) before
any JAX computation; a no-op on one host. Lives in the CLI package so that nothing below it
imports the CLI.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from vpd.distill.vlm_multihost import initialize

    args = list(sys.argv[1:] if argv is None else argv)
    info = initialize()
    print(f"[vpd multihost] {info}", file=sys.stderr, flush=True)
    from vpd.cli import app

    app(args=args, prog_name="vpd")


if __name__ == "__main__":
    main()
