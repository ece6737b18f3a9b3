"""``hwkit serve``: a thin click wrapper that starts the studio (``hwkit.studio``) under uvicorn."""

from __future__ import annotations

from pathlib import Path

import click

from hwkit.cli._common import stderr_console, threads_option


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets anyone on the network use the studio.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free one).")
@click.option("--model", "model", type=click.Path(path_type=Path),
              help="Offer this checkpoint or run folder first [default: the bundled model, then models/*].")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Where the network samples.")
@click.option("--max-jobs", type=click.IntRange(min=1), default=3, show_default=True,
              help="Writings running or waiting at once; more are told the studio is busy.")
@threads_option
def serve(host: str, port: int, model: Path | None, device: str, max_jobs: int) -> None:
    """Start the handwriting studio: write text in any hand, record your own, in the browser.

    The Write page streams handwriting as the network draws it, in the hand of
    a store line, a style file or a line you recorded, and offers SVG, PNG,
    animated SVG, NPZ and JSON downloads. The Record page saves lines you write
    with a mouse, pen or finger into data/<corpus>/ in the IAM-OnDB layout
    (`hwkit prepare data/<corpus>` reads them) and turns one into a style in
    styles/. Run it in the project folder (models/, data/, styles/ are
    relative to it). Ctrl-C stops it.

    \b
    Examples:
      hwkit serve
      hwkit serve --port 8080 --model models/mine
      hwkit serve --host 0.0.0.0 --threads 1
    """
    import uvicorn

    from hwkit.checkpoint import Checkpoint, find_checkpoint
    from hwkit.studio.app import create_app
    from hwkit.studio.service import Studio

    if model is not None:
        Checkpoint.load(find_checkpoint(model, kind="synthesis"))  # a bad --model fails here, not in the page
    listening = _listen(host, port)  # a port in use fails here, as one line, not as uvicorn's log and exit 3
    err = stderr_console()
    if host not in ("127.0.0.1", "localhost", "::1"):  # fmt: skip
        err.print(f"note: listening on {host}: anyone who can reach this machine can use the studio and write "
                  "into data/ and styles/")  # fmt: skip
    studio = Studio(".", model, max_jobs=max_jobs, device=device)
    local = host in ("127.0.0.1", "localhost", "::1")
    app = create_app(studio, allowed_hosts=None if not local else ("127.0.0.1", "localhost", "::1", "[::1]"))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    original_exit = server.handle_exit

    def handle_exit(sig, frame):  # Ctrl-C: running writings stop at their next points, queued ones never start
        studio.closing.set()
        original_exit(sig, frame)

    server.handle_exit = handle_exit
    shown = f"[{host}]" if ":" in host else host
    original_startup = server.startup

    async def startup(*args, **kwargs):
        await original_startup(*args, **kwargs)
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        click.echo(f"http://{shown}:{bound}/")
        err.print("studio running; Ctrl-C stops it")

    server.startup = startup
    try:
        server.run(sockets=[listening])
    except KeyboardInterrupt:  # uvicorn has shut down cleanly and re-raises the signal; Ctrl-C is how one stops it
        pass
    err.print("studio stopped")


def _listen(host: str, port: int):
    """A socket bound to ``host:port`` for uvicorn to serve on; ``HwkitError`` when it cannot be had."""
    import socket

    from hwkit.errors import HwkitError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise HwkitError(f"cannot listen on {host}: {exc.strerror or exc}") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise HwkitError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (pick another --port, or 0 for "
                         "any free one)") from None  # fmt: skip
    return sock
