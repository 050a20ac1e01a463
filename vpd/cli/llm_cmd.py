"""`vpd llm serve`: one program-writing model behind an OpenAI-compatible server, shared by many clients."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from vpd.cli import app

llm_app = typer.Typer(help="Program-writing LLMs: serve one to many synth workers.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")


@llm_app.command("serve")
def serve_cmd(llm: str = typer.Option("gemma", "--llm", help="Sampler spec to serve (gemma, transformers:PATH, …; "
                                                             "options after '?')."),
              host: str = typer.Option("127.0.0.1", "--host"),
              port: int = typer.Option(8001, "--port", help="TCP port (0 picks a free one)."),
              name: str = typer.Option("vpd-llm", "--name", help="The model id clients ask for."),
              max_batch: int = typer.Option(8, "--max-batch", min=1,
                                            help="Most prompts per generate call (1: every request reproducible alone)."),
              max_wait_ms: float = typer.Option(20.0, "--max-wait-ms", min=0.0,
                                                help="How long a request waits for others to batch with (ms)."),
              api_key_env: Optional[str] = typer.Option(None, "--api-key-env",
                                                        help="Require `Authorization: Bearer $VAR`.")) -> None:
    """Serve a sampler as POST /v1/completions and /v1/chat/completions (micro-batched), GET /v1/models, /health.

    Clients: `vpd synth --llm openai:NAME@http://HOST:PORT/v1` (several at once share the model)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vpd.cli.synth import check_sampler_spec
    from vpd.programs.llm_server import make_llm_server
    from vpd.programs.samplers import load_sampler

    check_sampler_spec(llm)
    key = os.environ.get(api_key_env) if api_key_env else None
    if api_key_env and not key:
        raise typer.BadParameter(f"--api-key-env {api_key_env}: the variable is not set")
    sampler = load_sampler(llm)
    httpd = make_llm_server(sampler, host=host, port=port, name=name, api_key=key, max_batch=max_batch,
                            max_wait_ms=max_wait_ms)
    h, p = httpd.server_address[:2]
    typer.echo(f"serving {name} ({sampler.name}) on http://{h}:{p}/v1 — "
               f"clients: --llm openai:{name}@http://{h}:{p}/v1")
    sys.stdout.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        httpd.endpoint.close()  # type: ignore[attr-defined]
        sampler.close()
