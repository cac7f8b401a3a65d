"""The FastAPI app of ``rnnkit serve``: built from the loaded runs and the routes their tasks declare.

    GET  /health                      always open (no API key): {"status": "ok", ...}
    GET  /runs                        the loaded runs, their routes, schemas and examples
    GET  /                            the web page (static files under /static)
    POST /runs/<run>/<route>          JSON body, or a multipart form for a route that takes uploads
    POST /runs/<run>/<route>/stream   the same request answered as server-sent events (routes that stream):
                                      ``data: {"text": piece}`` per text piece (an object piece is sent as
                                      it is: ``data: {...}``), then ``event: done`` (or
                                      ``event: error`` with {"error": ...} when it fails midway)
    GET  /docs, /openapi.json         OpenAPI

The server names no task: every route comes from :meth:`rnnkit.tasks.task.Task.serve_routes`.
"""
from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
import shutil
import tempfile
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask
from starlette.formparsers import MultiPartException

from rnnkit.config import ConfigError
from rnnkit.data.readers import DataError
from rnnkit.serve.config import ServeConfig
from rnnkit.serve.errors import ApiError, install_handlers
from rnnkit.serve.limits import Admission, ApiKey, BodyLimit
from rnnkit.serve.runs import ServedRun
from rnnkit.serve.uploads import check_upload, save_upload
from rnnkit.serve.validate import check_request, describe, form_fields
from rnnkit.tasks.serving import Route
from rnnkit.version import __version__

STATIC = Path(__file__).parent / "static"
BAD_INPUT = (ConfigError, DataError, ValueError)  # what a task raises for input it cannot use: a 422
FORMS = (b"multipart/form-data", b"application/x-www-form-urlencoded")
log = logging.getLogger("rnnkit.serve")


def create_app(runs: list[ServedRun], cfg: ServeConfig = ServeConfig()) -> FastAPI:
    admission = Admission(cfg.max_concurrent, cfg.max_queue, cfg.timeout_s, cfg.retry_after_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        admission.pool.shutdown(wait=False, cancel_futures=True)  # calls still running finish on their own

    app = FastAPI(title="rnnkit serve", version=__version__, lifespan=lifespan,
                  description="Trained rnnkit runs: " + ", ".join(f"{r.name} ({r.task})" for r in runs))
    app.state.admission, app.state.runs, app.state.config = admission, runs, cfg
    by_name = {r.name: r for r in runs}

    def hint(path: str) -> str:
        return "one of: GET /health, GET /runs, GET /docs, " + ", ".join(
            f"POST {route['path']}" for r in runs for route in r.describe()["routes"])

    install_handlers(app, hint)

    @app.get("/health", summary="liveness (open without the API key)")
    async def health() -> dict:
        return {"status": "ok", "runs": len(runs), "in_flight": admission.admitted, "refused": admission.refused}

    @app.get("/runs", summary="the loaded runs and what each serves")
    async def list_runs() -> list:
        return [r.describe() for r in runs]

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    for run in runs:
        for route in run.routes.values():
            _add_route(app, run, route, admission, cfg)

    @app.post("/runs/{run}/{route}", include_in_schema=False)
    async def unknown(run: str, route: str):  # only reached when no loaded run has this route
        if run not in by_name:
            raise ApiError(404, f"no run {run!r} is loaded", "run", f"one of: {', '.join(by_name)}")
        raise ApiError(404, f"run {run!r} has no route {route!r}", "route",
                       f"one of: {', '.join(by_name[run].routes)}")

    # the last added runs first: the key is checked, then the body size, before any route reads the request
    app.add_middleware(BodyLimit, max_json=cfg.max_body_bytes, max_multipart=cfg.max_upload_bytes)
    if cfg.api_key:
        app.add_middleware(ApiKey, key=cfg.api_key)
    return app


def _openapi(route: Route) -> dict:
    media = "multipart/form-data" if route.uploads else "application/json"
    extra: dict[str, Any] = {"requestBody": {"required": True, "content": {media: {"schema": route.input}}}}
    if route.example and not route.uploads:
        extra["requestBody"]["content"][media]["example"] = route.example
    return extra


def _add_route(app: FastAPI, run: ServedRun, route: Route, admission: Admission, cfg: ServeConfig) -> None:
    path = f"/runs/{run.name}/{route.name}"

    async def call(request: Request):
        body, folder = await _read_request(request, route, cfg)
        try:
            result = await admission.call(lambda: _run(route.call, body, folder))
        except ApiError as err:
            if err.status == 503:  # refused before the call ran (a 504's call removes its uploads itself)
                _remove(folder)
            raise
        return JSONResponse(result)

    app.add_api_route(path, call, methods=["POST"], summary=f"{run.name}: {route.summary}", tags=[run.name],
                      openapi_extra=_openapi(route), name=f"{run.name}.{route.name}")
    if route.stream is None:
        return

    async def stream(request: Request):
        body, folder = await _read_request(request, route, cfg)
        try:
            pieces, release = await admission.stream(lambda: route.stream(body))
        except BaseException as err:
            _remove(folder)
            if isinstance(err, BAD_INPUT):
                raise ApiError(422, str(err)) from None
            raise

        def finished() -> None:  # also when the client left before the stream began
            release()
            _remove(folder)
        return StreamingResponse(_events(pieces), media_type="text/event-stream", background=BackgroundTask(finished),
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    app.add_api_route(path + "/stream", stream, methods=["POST"], tags=[run.name],
                      summary=f"{run.name}: {route.summary} - as server-sent events",
                      openapi_extra=_openapi(route), name=f"{run.name}.{route.name}.stream")


def _run(fn, body: dict, folder: Path | None):
    """The route's call in a pool thread; bad input becomes a 422; uploads are removed when it returns."""
    try:
        return fn(body)
    except BAD_INPUT as err:
        raise ApiError(422, str(err)) from None
    finally:
        _remove(folder)


def _remove(folder: Path | None) -> None:
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


async def _events(pieces: AsyncIterator[str | dict]) -> AsyncIterator[str]:
    """Server-sent events of the pieces."""
    def event(name: str, data: dict) -> str:
        return f"event: {name}\ndata: {json.dumps(data)}\n\n"
    try:
        async for piece in pieces:  # text, or a JSON-ready object sent as it is
            data = {"text": piece} if isinstance(piece, str) else piece
            yield f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
        yield event("done", {})
    except ApiError as err:
        yield event("error", {"error": err.error, "status": err.status})
    except BAD_INPUT as err:
        yield event("error", {"error": str(err), "status": 422})
    except Exception as err:  # noqa: BLE001 - a bug midway: logged, told to the client, the server goes on
        log.exception("error in a stream")
        yield event("error", {"error": f"internal error: {type(err).__name__}: {err}", "status": 500})


async def _read_request(request: Request, route: Route, cfg: ServeConfig) -> tuple[dict, Path | None]:
    """The checked request, with uploads saved (and checked) in a fresh temporary folder (or None)."""
    content_type = request.headers.get("content-type", "").encode()
    if not content_type.startswith(FORMS):
        raw = await request.body()
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ApiError(400, f"malformed JSON: {err}", None, describe(route.input)) from None
        for field in route.uploads:
            if isinstance(body, dict) and field in body:
                raise ApiError(422, f"{field}: upload the file itself in a multipart/form-data request", field,
                               describe(route.input["properties"][field]))
        return check_request(body, route, cfg.max_length), None
    if not route.uploads and content_type.startswith(b"multipart/"):
        raise ApiError(415, f"{route.name} takes a JSON body, not a form", None, describe(route.input))
    try:
        form = await request.form(max_files=len(route.uploads), max_fields=64)
    except MultiPartException as err:
        raise ApiError(400, f"malformed form: {err.message}", None, describe(route.input)) from None
    body = form_fields(form, route)
    folder = None
    try:
        for field, kind in route.uploads.items():
            upload = form.get(field)
            if upload is None:
                continue
            if isinstance(upload, str):
                raise ApiError(422, f"{field}: expected an uploaded file, got a text field", field,
                               describe(route.input["properties"][field]))
            folder = folder or Path(tempfile.mkdtemp(prefix="rnnkit-serve-"))
            path = save_upload(upload, folder, field, kind)
            check_upload(path, field, kind, cfg)
            body[field] = str(path)
        return check_request(body, route, cfg.max_length), folder
    except BaseException:
        _remove(folder)
        raise
    finally:
        await form.close()
