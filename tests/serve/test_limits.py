"""The limits of a public endpoint: body and upload size, concurrency cap (503 + Retry-After, never a queue
without bound), per-request timeout, the API key, and the checks on what a task declares."""
from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from rnnkit.config import ConfigError
from rnnkit.serve.app import create_app
from rnnkit.serve.config import ServeConfig
from rnnkit.serve.runs import ServedRun, run_name
from rnnkit.tasks.serving import Route, file, integer, obj, text


def served(routes: list[Route]) -> list[ServedRun]:
    return [ServedRun("fake", "runs/fake", "fake", None, {r.name: r for r in routes})]


def echo(request: dict) -> dict:
    return {"echo": request}


class Gate:
    """A route call that blocks until released (so that requests pile up deterministically)."""

    def __init__(self):
        self.entered, self.release = threading.Semaphore(0), threading.Event()

    def __call__(self, request: dict) -> dict:
        self.entered.release()
        self.release.wait(10)
        return {"ok": True}


ECHO = Route("echo", "echo", obj(("text",), text=text("anything"), n=integer("a count", 0)), echo,
             stream=lambda r: iter(["a", "b"]), length_field="n")
UPLOAD = Route("upload", "an image", obj(("image",), image=file("image", "a picture")), echo, uploads={"image": "image"})


def test_body_and_upload_size_limits(tmp_path):
    c = TestClient(create_app(served([ECHO, UPLOAD]), ServeConfig(max_body_bytes=100, max_upload_bytes=2000)))
    assert c.post("/runs/fake/echo", json={"text": "x"}).status_code == 200
    big = c.post("/runs/fake/echo", json={"text": "x" * 200})
    assert big.status_code == 413 and "--max-body-bytes" in big.json()["expected"]

    def chunks():  # no Content-Length: the limit holds while reading
        yield b'{"text": "'
        yield b"x" * 200
        yield b'"}'
    assert c.post("/runs/fake/echo", content=chunks(), headers={"content-type": "application/json"}).status_code == 413
    upload = c.post("/runs/fake/upload", files={"image": ("a.png", b"\x89PNG" + b"0" * 5000, "image/png")})
    assert upload.status_code == 413 and "--max-upload-bytes" in upload.json()["expected"]
    assert c.get("/health").status_code == 200


def test_an_image_upload_is_checked(tmp_path):
    from PIL import Image
    c = TestClient(create_app(served([UPLOAD]), ServeConfig(max_image_pixels=100 * 100)))
    Image.new("RGB", (20, 10), "red").save(tmp_path / "a.png")
    ok = c.post("/runs/fake/upload", files={"image": ("a.png", (tmp_path / "a.png").read_bytes(), "image/png")})
    assert ok.status_code == 200 and ok.json()["echo"]["image"].endswith("image.png")
    assert c.post("/runs/fake/upload", files={"image": ("a.png", b"GIF89a nope", "image/png")}).status_code == 415
    Image.new("RGB", (200, 200)).save(tmp_path / "big.png")
    big = c.post("/runs/fake/upload", files={"image": ("big.png", (tmp_path / "big.png").read_bytes())})
    assert big.status_code == 413 and "--max-image-pixels" in big.json()["expected"]
    empty = c.post("/runs/fake/upload", files={"image": ("a.png", b"", "image/png")})
    assert empty.status_code == 422 and "empty" in empty.json()["error"]


def test_the_concurrency_cap_answers_503_with_retry_after():
    gate = Gate()
    route = Route("slow", "blocks", obj(), gate)
    app = create_app(served([route]), ServeConfig(max_concurrent=1, max_queue=1, retry_after_s=7))
    with TestClient(app) as c:
        results = []
        threads = [threading.Thread(target=lambda: results.append(c.post("/runs/fake/slow", json={}).status_code))
                   for _ in range(2)]
        for t in threads:
            t.start()
        assert gate.entered.acquire(timeout=10)  # one runs ...
        deadline = time.time() + 10
        while app.state.admission.admitted < 2 and time.time() < deadline:  # ... and one waits
            time.sleep(0.01)
        refused = c.post("/runs/fake/slow", json={})
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "7"
        assert "--max-concurrent" in refused.json()["expected"]
        gate.release.set()
        for t in threads:
            t.join(10)
        assert sorted(results) == [200, 200]  # nothing running or queued was lost
        assert c.get("/health").json() == {"status": "ok", "runs": 1, "in_flight": 0, "refused": 1}


def test_a_request_past_its_timeout_gets_504_and_frees_its_slot_when_done():
    gate = Gate()
    app = create_app(served([Route("slow", "blocks", obj(), gate)]), ServeConfig(timeout_s=0.3, max_concurrent=1))
    with TestClient(app) as c:
        r = c.post("/runs/fake/slow", json={})
        assert r.status_code == 504 and "timeout" in r.json()["error"]
        assert app.state.admission.admitted == 1  # the call still runs: its slot stays taken ...
        gate.release.set()
        deadline = time.time() + 10
        while app.state.admission.admitted and time.time() < deadline:
            time.sleep(0.01)
        assert app.state.admission.admitted == 0  # ... until it returns


def test_the_api_key():
    app = create_app(served([ECHO]), ServeConfig(api_key="s3cret"))
    c = TestClient(app)
    assert c.get("/health").status_code == 200  # open
    for path in ("/runs", "/", "/docs", "/static/app.js"):
        r = c.get(path)
        assert r.status_code == 401 and "API key" in r.json()["error"], path
    assert c.post("/runs/fake/echo", json={"text": "x"}, headers={"X-API-Key": "wrong"}).status_code == 401
    assert c.post("/runs/fake/echo", json={"text": "x"}, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert c.post("/runs/fake/echo", json={"text": "x"}, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    browser = TestClient(app)
    page = browser.get("/?key=s3cret")  # a browser opened on the page with the key gets a cookie ...
    assert page.status_code == 200 and "rnnkit_key" in page.headers["set-cookie"]
    assert browser.get("/static/app.js").status_code == 200  # ... which its later requests carry
    assert browser.post("/runs/fake/echo", json={"text": "x"}).status_code == 200


def test_stream_and_length_limit():
    c = TestClient(create_app(served([ECHO]), ServeConfig(max_length=10)))
    with c.stream("POST", "/runs/fake/echo/stream", json={"text": "x"}) as s:
        assert s.read().decode() == 'data: {"text": "a"}\n\ndata: {"text": "b"}\n\nevent: done\ndata: {}\n\n'
    r = c.post("/runs/fake/echo", json={"text": "x", "n": 11})
    assert r.status_code == 422 and r.json()["expected"] == "at most 10 (--max-length)"


def test_an_error_midway_through_a_stream_is_an_event():
    def pieces(request):
        yield "a"
        raise ConfigError("the prompt encodes to no tokens")
    c = TestClient(create_app(served([Route("s", "s", obj(), echo, stream=pieces)])))
    with c.stream("POST", "/runs/fake/s/stream", json={}) as s:
        body = s.read().decode()
    assert body.endswith('event: error\ndata: {"error": "the prompt encodes to no tokens", "status": 422}\n\n')


def test_config_and_route_declarations_are_checked():
    with pytest.raises(ConfigError, match="--max-concurrent must be positive"):
        ServeConfig(max_concurrent=0)
    with pytest.raises(ConfigError, match="--host must be an IP address"):
        ServeConfig(host="example.com")
    with pytest.raises(ValueError, match="upload 'x' is not a property"):
        Route("r", "r", obj(), echo, uploads={"x": "audio"})
    with pytest.raises(ValueError, match="kind 'video'"):
        Route("r", "r", obj(x=file("video", "v")), echo, uploads={"x": "video"})
    with pytest.raises(ValueError, match="panel 'chart'"):
        Route("r", "r", obj(), echo, panel="chart")
    assert run_name("runs/lm-1", set()) == "lm-1" and run_name("runs/lm-1", {"lm-1"}) == "lm-1-2"
    assert run_name("a b/c d", set()) == "c-d"


def test_a_streamed_route_reads_its_upload_while_it_streams(tmp_path):
    from pathlib import Path

    from PIL import Image

    def pieces(request):
        path = Path(request["image"])
        yield "start"
        yield f"{path.stat().st_size}"  # the upload is still there midway through the stream
    route = Route("s", "s", obj(("image",), image=file("image", "a picture")), echo, stream=pieces,
                  uploads={"image": "image"})
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    c = TestClient(create_app(served([route])))
    with c.stream("POST", "/runs/fake/s/stream", files={"image": ("a.png", data, "image/png")}) as s:
        body = s.read().decode()
    assert f'data: {{"text": "{len(data)}"}}' in body and body.endswith("event: done\ndata: {}\n\n")


def test_the_serve_command_refuses_what_it_cannot_serve(tmp_path, capsys):
    from rnnkit.cli import main
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "missing: no such run directory" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--max-concurrent", "0"]) == 2
    assert "--max-concurrent must be positive" in capsys.readouterr().err


def test_a_stream_that_never_starts_still_frees_its_slot():
    import asyncio

    from rnnkit.serve.limits import Admission

    async def scenario():
        admission = Admission(1, 0, timeout_s=5, retry_after_s=1)
        pieces, release = await admission.stream(lambda: iter(["a"]))
        assert admission.admitted == 1
        release()  # the response is over without the iterator ever starting (the client left)
        release()  # once only
        assert admission.admitted == 0
        pieces, release = await admission.stream(lambda: iter(["a", "b"]))
        assert [p async for p in pieces] == ["a", "b"] and admission.admitted == 0
        release()
        assert admission.admitted == 0 and admission._slots._value == 1
    asyncio.run(scenario())


def test_a_bug_in_a_route_is_a_500_and_the_server_goes_on():
    def broken(request):
        raise RuntimeError("boom")
    c = TestClient(create_app(served([Route("broken", "b", obj(), broken), ECHO])), raise_server_exceptions=False)
    r = c.post("/runs/fake/broken", json={})
    assert r.status_code == 500 and r.json()["error"] == "internal error: RuntimeError: boom"
    assert c.post("/runs/fake/echo", json={"text": "x"}).status_code == 200
    assert c.get("/health").json()["in_flight"] == 0  # its slot was freed
