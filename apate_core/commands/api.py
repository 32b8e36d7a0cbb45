"""``apate api [--host 127.0.0.1] [--port 8000]``: serve the HTTP API (FastAPI under uvicorn; docs at /docs).

Without APATE_API_KEYS the API serves only a loopback address; on any other address it refuses to start until keys
are configured.
"""

from __future__ import annotations

import argparse
import sys

from ..settings import load_settings


def run(args: argparse.Namespace) -> int:
    from ..api.security import check_binding, load_keys

    settings = load_settings()
    check_binding(args.host, load_keys(settings.api_keys))  # before anything heavy is imported

    import uvicorn

    from ..api import create_app

    app = create_app(settings)
    keys = "API keys required" if app.state.apate.guard.keys_required else "no API keys (loopback only)"
    print(f"apate api on http://{args.host}:{args.port} ({keys}); documentation at /docs", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, proxy_headers=False,
                server_header=False)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("api", help="serve the HTTP API (Detect, Protect, models, health, metrics)",
                            description=__doc__)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; any other needs APATE_API_KEYS)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                        help="uvicorn's log level (default info)")
    parser.set_defaults(handler=run)
