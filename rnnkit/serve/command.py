"""``rnnkit serve RUN [RUN ...]``: load the runs, build the app, run it on uvicorn."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

import torch

from rnnkit.config import ConfigError
from rnnkit.serve.config import API_KEY_ENV, ServeConfig


def setup_serve(p: argparse.ArgumentParser) -> None:
    d = ServeConfig()
    p.description = ("Serve trained runs over HTTP: one route per thing each run's task serves, a web page at /, "
                     "OpenAPI docs at /docs, /health and /runs. Binds to 127.0.0.1 unless --host says otherwise.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories of `rnnkit train TASK`")
    p.add_argument("--host", default=d.host, help="address to bind (default: %(default)s; 0.0.0.0 = every "
                   "interface, reachable from other machines)")
    p.add_argument("--port", type=int, default=d.port, help="port (default: %(default)s)")
    p.add_argument("--api-key", default=None, help=f"require this key on every route but /health (default: the "
                   f"{API_KEY_ENV} environment variable; unset = no key)")
    for name, help_text in (
            ("max_body_bytes", "largest JSON request, bytes"), ("max_upload_bytes", "largest multipart request "
            "(uploads), bytes"), ("max_audio_seconds", "longest uploaded sound, seconds"),
            ("max_image_pixels", "largest uploaded image, width x height"),
            ("max_length", "most tokens / frames one request may generate"),
            ("timeout_s", "per-request timeout, seconds (waiting for a slot included)"),
            ("max_concurrent", "model calls running at once"),
            ("max_queue", "requests waiting for a slot; more are answered 503 with Retry-After"),
            ("retry_after_s", "the Retry-After of a 503, seconds"), ("threads", "torch CPU threads (0 = torch's default)")):
        default = getattr(d, name)
        p.add_argument("--" + name.replace("_", "-"), type=type(default), default=default,
                       help=f"{help_text} (default: %(default)s)")
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info",
                   help="uvicorn's log level (default: %(default)s)")


def serve_command(args: argparse.Namespace) -> int:
    uvicorn = _uvicorn()
    from rnnkit.serve.app import create_app  # fastapi: the serve extra, imported only when serving
    from rnnkit.serve.runs import load_runs
    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV, "")
    cfg = ServeConfig(host=args.host, port=args.port, api_key=key, **{
        name: getattr(args, name) for name in ("max_body_bytes", "max_upload_bytes", "max_audio_seconds",
                                               "max_image_pixels", "max_length", "timeout_s", "max_concurrent",
                                               "max_queue", "retry_after_s", "threads")})
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    runs = load_runs(args.runs)
    for r in runs:
        print(f"rnnkit serve: {r.path} ({r.task}) at /runs/{r.name}/: {', '.join(r.routes)}", file=sys.stderr)
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    print(f"rnnkit serve: page http://{host}:{cfg.port}/  docs http://{host}:{cfg.port}/docs"
          + ("  (API key required)" if cfg.api_key else ""), file=sys.stderr, flush=True)
    uvicorn.run(create_app(runs, cfg), host=cfg.host, port=cfg.port, log_level=args.log_level)
    return 0


def _uvicorn():
    """uvicorn, once the serve extra's packages are known to import (else an error naming the install)."""
    for module in ("fastapi", "jsonschema", "python_multipart", "uvicorn"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise ConfigError(f"rnnkit serve needs {module}: pip install 'rnnkit[serve]'") from None
    return importlib.import_module("uvicorn")
