"""``gansr serve``: run the web app (page + JSON/HTTP API) with uvicorn."""

from __future__ import annotations

import argparse
import os

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


HELP = "run the web app: upload an image in the browser, compare, download"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        description=(
            "Serve a web page and a JSON/HTTP API (OpenAPI docs at /docs) for upscaling images. "
            "Binds to 127.0.0.1 by default: the app has no authentication, so only expose it on a "
            "trusted network. Inference runs in --workers threads; with --queue more requests "
            "waiting, further ones get 503 with Retry-After. Needs the serve extra (pip install "
            "-e '.[serve]' in a clone, pip install 'gansr[serve]' from a package index)."
        ),
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)"
    )
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=1, help="images processed at the same time (default: 1)")
    p.add_argument("--queue", type=int, default=4, help="requests that may wait for a worker (default: 4)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest image file in MB (default: 20)")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=4096 * 4096,
        help="largest input image in pixels (default: 16777216)",
    )
    p.add_argument(
        "--max-output-pixels",
        type=int,
        default=8192 * 8192,
        help="largest result in pixels (default: 67108864)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="PATH",
        help="also offer this checkpoint (gansr .safetensors or a peer .pth); repeatable",
    )
    p.add_argument(
        "--default-model", default=None, metavar="NAME", help="model used when a request names none"
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="(default: info)",
    )
    p.set_defaults(func=run)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _bind(host: str, port: int):  # -> socket.socket
    """Bind the listening socket here, so a busy port is a one-line error, not a uvicorn exit."""
    import socket

    from gansr.errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve --host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    from gansr.errors import ConfigError, install_hint

    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn
    except ImportError as exc:
        missing = exc.name or "fastapi and uvicorn"
        raise ConfigError(
            f"the web app needs {missing}, from the serve extra: {install_hint('serve')}"
        ) from None
    import torch

    from gansr.serve import ServeConfig, create_app

    config = ServeConfig(
        host=args.host,
        port=args.port,
        workers=args.workers,
        queue=args.queue,
        max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels,
        max_output_pixels=args.max_output_pixels,
        device=args.device,
        default_model=args.default_model,
    )
    # Workers share the cores: each torch op gets its share instead of all of them oversubscribing.
    torch.set_num_threads(max(1, _cpu_count() // config.workers))
    app = create_app(config, models=args.model)
    sock = _bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"gansr serve: listening on http://{shown}:{port}/ (API docs at /docs; Ctrl+C to stop)", flush=True)
    if config.host not in LOOPBACK:
        print("gansr serve: warning: reachable from the network and without authentication", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=10, server_header=False)
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl+C / SIGINT it handled, after its graceful shutdown
    finally:
        sock.close()
    print("gansr serve: stopped", flush=True)
    return 0
