"""``chainrule playground``: start the server, print its address, open the browser."""

from __future__ import annotations

import sys
import threading
import webbrowser

from .. import runs


def add_commands(commands) -> dict:
    """Add the ``playground`` sub-command to an argparse sub-parser group; name -> handler."""
    p = commands.add_parser(
        "playground",
        help="train a network in your browser and watch it learn",
        description="Serve the playground page: build a small network, press play, watch it "
        "learn, export the run. Ctrl-C stops the server.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port", type=runs.non_negative_int, default=8000, help="0: any free port (default 8000)"
    )
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument(
        "--data-dir",
        help="folder with the MNIST files for the image mode (default: the download cache)",
    )
    return {"playground": command_playground}


def command_playground(args) -> int:
    from .server import PlaygroundServer

    if args.port > 65535:
        raise runs.RunError(f"--port {args.port}: ports go up to 65535")
    try:
        server = PlaygroundServer(args.host, args.port, data_dir=args.data_dir)
    except OSError as exc:
        raise runs.RunError(
            f"--host {args.host} --port {args.port}: cannot listen ({exc.strerror or exc})"
        ) from None
    print(f"chainrule playground: {server.url}  (Ctrl-C stops it)", flush=True)
    if not args.no_browser:
        threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.registry.close_all()
        server.server_close()
    print("chainrule playground: stopped", file=sys.stderr, flush=True)
    return 0
