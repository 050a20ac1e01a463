"""`vpd tools …`: list tools and backends, try a tool on an image, serve a toolbox over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from vpd.cli import app

tools_app = typer.Typer(help="Vision tools: list backends and their weights, run a tool, serve a toolbox.",
                        no_args_is_help=True)
app.add_typer(tools_app, name="tools")


def _config_options(spec: str | None) -> dict[str, dict[str, Any]]:
    """backend -> options found in a tools config (shared ``backends:`` section and per-tool mappings)."""
    if not spec:
        return {}
    from vpd.tools.toolbox import _parse_spec

    cfg = _parse_spec(spec)
    out: dict[str, dict[str, Any]] = {k: dict(v or {}) for k, v in (cfg.get("backends") or {}).items()}
    for tool, value in cfg.items():
        if tool in ("backends", "default") or not isinstance(value, dict):
            continue
        opts = dict(value)
        name = str(opts.pop("backend", ""))
        out.setdefault(name, {}).update(opts)
    return out


def parse_arg(text: str) -> tuple[str, Any]:
    """``k=v`` -> (k, v) with v JSON-decoded when possible (``options=["a","b"]``), else the string."""
    if "=" not in text:
        raise typer.BadParameter(f"--arg expects key=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


@tools_app.command("list")
def list_cmd(tools: Optional[str] = typer.Option(None, "--tools", help="Tools spec or YAML whose backend options (weight paths) to check."),
             as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")) -> None:
    """Every tool with its signature, and every backend with what it needs and whether its weights were found."""
    from rich.console import Console
    from rich.table import Table

    import vpd.tools.backends  # noqa: F401  (registers backends)
    from vpd.tools.backend import BACKENDS
    from vpd.tools.specs import TOOLS

    options = _config_options(tools)
    backends = []
    for name, cls in BACKENDS.items():
        try:
            status = cls.weights_status(options.get(name))
        except Exception as exc:  # a status check must never break the listing
            status = f"error: {exc}"
        backends.append({"name": name, "provides": sorted(cls.provides), "batchable": sorted(cls.batchable),
                         "max_batch": cls.max_batch, "memory_class": cls.memory_class, "needs": cls.needs,
                         "weights": status})
    tool_rows = [{"name": n, "signature": s.signature, "doc": s.doc,
                  "backends": [b["name"] for b in backends if n in b["provides"]]} for n, s in TOOLS.items()]
    if as_json:
        typer.echo(json.dumps({"tools": tool_rows, "backends": backends}, indent=2))
        return
    console = Console(width=200)
    t = Table(title="Tools", show_lines=False)
    for col in ("tool", "signature", "backends", "description"):
        t.add_column(col, overflow="fold")
    for r in tool_rows:
        t.add_row(r["name"], r["signature"], ", ".join(r["backends"]) or "(built in)", r["doc"])
    console.print(t)
    b = Table(title="Backends")
    for col in ("backend", "tools", "batch", "memory", "needs", "weights"):
        b.add_column(col, overflow="fold")
    for r in backends:
        w = r["weights"]
        style = "green" if w.startswith(("found", "n/a")) else ("yellow" if w.startswith("remote") else "red")
        batch = f"{r['max_batch']} ({', '.join(r['batchable'])})" if r["batchable"] else "1"
        b.add_row(r["name"], ", ".join(r["provides"]), batch, r["memory_class"], r["needs"], f"[{style}]{w}[/{style}]")
    console.print(b)


@tools_app.command("run")
def run_cmd(tool: str = typer.Argument(..., help="Tool name, e.g. detect, vqa, ocr."),
            image: Optional[Path] = typer.Option(None, "--image", help="Image file (not needed for llm_query)."),
            arg: list[str] = typer.Option([], "--arg", help="Tool argument key=value (repeatable); JSON values allowed."),
            tools: str = typer.Option("shapes", "--tools", help="Tools spec: backend name, 'a,tool=b' or a YAML file."),
            draw: Optional[Path] = typer.Option(None, "--draw", help="For box tools: write the image with boxes to this PNG.")) -> None:
    """Run one tool once and print its JSON result (box tools: rows of x0, y0, x1, y1, score, label in pixels)."""
    import time

    from vpd.tools import load
    from vpd.tools.specs import TOOLS

    args = dict(parse_arg(a) for a in arg)
    spec = TOOLS.get(tool)
    if spec.needs_image and image is None:
        raise typer.BadParameter(f"tool {tool!r} needs --image")
    tb = load(tools)
    try:
        t0 = time.perf_counter()
        result, _ = tb.call_json(tool, image if spec.needs_image else None, **args)
        ms = (time.perf_counter() - t0) * 1000
    finally:
        tb.close()
    typer.echo(json.dumps(result, ensure_ascii=False))
    typer.echo(f"# {tool} by {tb.backends[tool].cache_tag()} in {ms:.0f} ms", err=True)
    if draw is not None and spec.returns_boxes and image is not None:
        _draw_boxes(image, result, draw)
        typer.echo(f"# drew {len(result)} boxes to {draw}", err=True)


def _draw_boxes(image: Path, rows: list[list[Any]], out: Path) -> None:
    from PIL import ImageDraw

    from vpd.images import load_image

    img = load_image(image).copy()
    d = ImageDraw.Draw(img)
    for x0, y0, x1, y1, score, label in rows:
        d.rectangle([x0, y0, x1, y1], outline=(255, 0, 0), width=2)
        d.text((x0 + 2, y0 + 2), f"{label} {score:.2f}", fill=(255, 0, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)


@tools_app.command("serve")
def serve_cmd(tools: str = typer.Option("shapes", "--tools", help="Tools spec or YAML to serve."),
              host: str = typer.Option("127.0.0.1", "--host"),
              port: int = typer.Option(8000, "--port", help="TCP port (0 picks a free one)."),
              name: str = typer.Option("vpd", "--name", help="Model id prefix: NAME, NAME-vqa, NAME-caption, NAME-llm_query."),
              api_key_env: Optional[str] = typer.Option(None, "--api-key-env", help="Require `Authorization: Bearer $VAR`."),
              cache: Optional[Path] = typer.Option(None, "--cache", help="SQLite tool cache file shared by requests."),
              max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", help="Micro-batching window (ms).")) -> None:
    """Serve a toolbox as an OpenAI-compatible VLM endpoint (POST /v1/chat/completions, GET /v1/models)."""
    import os

    from vpd.tools import load
    from vpd.tools.openai_server import make_server

    tool_cache = None
    if cache is not None:
        from vpd.tools.cache import ToolCache

        tool_cache = ToolCache(cache)
    tb = load(tools, cache=tool_cache)
    key = os.environ.get(api_key_env) if api_key_env else None
    if api_key_env and not key:
        raise typer.BadParameter(f"--api-key-env {api_key_env}: the variable is not set")
    httpd = make_server(tb, host=host, port=port, name=name, api_key=key, max_wait_ms=max_wait_ms)
    h, p = httpd.server_address[:2]
    models = ", ".join(m["id"] for m in httpd.endpoint.models()["data"])  # type: ignore[attr-defined]
    typer.echo(f"serving {models} on http://{h}:{p}/v1", err=False)
    import sys

    sys.stdout.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        httpd.endpoint.server.close()  # type: ignore[attr-defined]
        tb.close()


@tools_app.command("make-tiny")
def make_tiny_cmd(kind: str = typer.Argument(..., help="owlv2, owlvit, clip, siglip, blip_vqa, blip_caption, blip2, paligemma, depth_anything, dpt, groundingdino, bert"),
                  out: Path = typer.Option(..., "--out", help="Output folder.")) -> None:
    """Build a tiny random-init checkpoint (offline) to smoke-test a backend's loading and formats."""
    from vpd.tools.tiny_models import make_tiny

    path = make_tiny(kind, out)
    typer.echo(str(path))
