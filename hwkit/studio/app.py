"""The studio's HTTP face: a Starlette app over ``service.Studio``.

    GET  /                      the Write page          GET /record         the Record page
    GET  /api/models            models by id            GET /api/hands?model=ID   hands by id
    POST /api/write             JSON request -> text/event-stream: start, points..., line..., done | error
    POST /api/page              JSON request (+ paper, margin, size) -> event-stream: start, progress..., done | error
    GET  /api/result/ID/FORMAT  a finished writing as svg, png, animate, npz, json or attention (?line=K: one line);
                                pages as svg, png, pdf, plotter, gcode or hpgl (?page=K, from 0; the PDF has all)
    GET  /api/prompt            a line to copy on the Record page
    POST /api/record            a recorded line -> data/<corpus>/ (IAM-OnDB layout)
    GET  /api/recordings?corpus=NAME        the lines recorded so far
    POST /api/style             a recorded line -> a style file in styles/

Errors are JSON ``{"error": message}`` with a 4xx/5xx status; request bodies
over ``MAX_BODY`` bytes are refused before they are read in full.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hwkit.errors import HwkitError
from hwkit.studio.service import Busy, RequestError, Studio

STATIC = Path(__file__).parent / "static"
MAX_BODY = 1 << 20  # a recorded line of 4,000 points is about 120 kB of JSON


class _TooLarge(Exception):
    pass


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


async def _json(request: Request) -> object:
    """The body as JSON, from a page of this studio only.

    A form on any other web site can make the browser POST here (no preflight
    for ``text/plain``): requiring ``application/json`` forces a preflight this
    server never grants, and an ``Origin`` that is not this server is refused.
    """
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise RequestError("send the request as application/json", 415)
    origin = request.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1].rstrip("/") != request.headers.get("host", ""):
        raise RequestError("requests from other web sites are refused", 403)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise _TooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _TooLarge()
    try:
        return json.loads(body)
    except ValueError:
        raise RequestError("the request is not JSON") from None


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(studio: Studio, allowed_hosts: Sequence[str] | None = LOCAL_HOSTS) -> Starlette:
    """The studio app; ``studio.close()`` runs when the server shuts down.

    ``allowed_hosts``: the ``Host`` names it answers (default: this machine's own names, which also
    stops a DNS-rebinding page from reaching it); None answers any (``hwkit serve --host 0.0.0.0``).
    """

    def guarded(handler):
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except _TooLarge:
                return _error(f"the request is larger than {MAX_BODY // 1024} kB", 413)
            except Busy as exc:
                return _error(str(exc), 503)
            except RequestError as exc:
                return _error(str(exc), exc.status)
            except HwkitError as exc:
                return _error(str(exc), 400)

        return endpoint

    async def run_blocking(fn, *args, **kwargs):
        """Model loading and file work off the event loop (the writing itself has its own worker)."""
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / ("record.html" if request.url.path == "/record" else "write.html"))

    async def models(request: Request) -> Response:
        return JSONResponse(await run_blocking(studio.models))

    async def hands(request: Request) -> Response:
        model = request.query_params.get("model") or await run_blocking(studio.default_model_id)
        return JSONResponse(await run_blocking(studio.hands, model))

    def writer(pages: bool):
        async def write(request: Request) -> Response:
            return stream(await run_blocking(studio.make_job, await _json(request), pages))

        return write

    def stream(job) -> Response:
        """Run ``job`` on the studio's worker and send its events as they come (server-sent events)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def emit(event: dict) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        loop.run_in_executor(studio.executor, studio.run, job, emit)

        async def events():
            try:
                while True:
                    event = await queue.get()
                    yield f"event: {event['event']}\ndata: {json.dumps(event)}\n\n"
                    if event["event"] in ("done", "error"):
                        break
            finally:
                job.cancel.set()  # the client left (or the stream ended): stop sampling

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def result(request: Request) -> Response:
        q = request.query_params
        try:
            width = float(q.get("width", 1.6))
        except ValueError:
            raise RequestError("width is a number") from None
        if not 0 < width <= 20:
            raise RequestError("width is from 0 to 20")
        numbers = {}
        for key in ("line", "page"):
            value = q.get(key)
            if value is not None and not (value.isascii() and value.isdigit() and len(value) <= 6):
                raise RequestError(f"{key} is a {key} number")
            numbers[key] = None if value is None else int(value)
        data, media, name = await run_blocking(studio.download, request.path_params["result_id"],
                                               request.path_params["fmt"], colour=q.get("colour", "black"),
                                               width=width, **numbers)  # fmt: skip
        return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def prompt(request: Request) -> Response:
        return JSONResponse({"text": studio.prompt()})

    async def record(request: Request) -> Response:
        return JSONResponse(await run_blocking(studio.record, await _json(request)))

    async def recordings(request: Request) -> Response:
        return JSONResponse(await run_blocking(studio.recordings, request.query_params.get("corpus", "")))

    async def style(request: Request) -> Response:
        return JSONResponse(await run_blocking(studio.make_style, await _json(request)))

    routes = [
        Route("/", page),
        Route("/record", page),
        Route("/api/models", guarded(models)),
        Route("/api/hands", guarded(hands)),
        Route("/api/write", guarded(writer(pages=False)), methods=["POST"]),
        Route("/api/page", guarded(writer(pages=True)), methods=["POST"]),
        Route("/api/result/{result_id:str}/{fmt:str}", guarded(result)),
        Route("/api/prompt", guarded(prompt)),
        Route("/api/record", guarded(record), methods=["POST"]),
        Route("/api/recordings", guarded(recordings)),
        Route("/api/style", guarded(style), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    @asynccontextmanager
    async def lifespan(app):
        yield
        studio.close()

    middleware = [] if allowed_hosts is None else [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
