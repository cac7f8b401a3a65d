"""Every route of every task through FastAPI's TestClient: good requests answer what the schema says, bad
ones a 4xx JSON error naming the field and what was expected, and the server keeps serving."""
from __future__ import annotations

import base64
import json

import pytest

from rnnkit.serve.app import create_app
from rnnkit.serve.config import ServeConfig
from rnnkit.serve.runs import load_runs
from rnnkit.tasks import TASKS
from fastapi.testclient import TestClient

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def client(tiny_runs):
    runs = load_runs([str(p) for p in tiny_runs.values()])
    with TestClient(create_app(runs, ServeConfig(max_length=500, max_audio_seconds=2.0))) as c:
        yield c


def need(tiny_runs, name):
    if name not in tiny_runs:
        pytest.skip(f"no tiny {name} run (its optional data package is missing)")


def test_health_runs_docs_and_page(client, tiny_runs):
    assert client.get("/health").json()["status"] == "ok"
    runs = client.get("/runs").json()
    assert {r["task"] for r in runs} == set(tiny_runs)
    for r in runs:
        assert r["routes"], r["name"]
        for route in r["routes"]:
            assert route["input"]["type"] == "object" and route["path"] == f"/runs/{r['name']}/{route['name']}"
    spec = client.get("/openapi.json").json()
    assert "/runs/lm/generate" in spec["paths"] and "/runs/lm/generate/stream" in spec["paths"]
    body = spec["paths"]["/runs/lm/generate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["prompt"]
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "PANELS.generate" in client.get("/static/app.js").text
    assert "http://" not in page.text.replace("http://www.w3.org", "")  # nothing loaded from elsewhere


def test_every_task_serves_routes(tiny_runs):
    for name, run in tiny_runs.items():
        task = TASKS[name]
        routes = task.serve_routes(task.load(run))
        assert routes and all(r.input["type"] == "object" for r in routes)


def test_generate_and_stream(client):
    r = client.post("/runs/lm/generate", json={"prompt": "def ", "length": 12, "seed": 3, "temperature": 0})
    assert r.status_code == 200
    text = r.json()["text"]
    assert text.startswith("def ") and len(text) == 4 + 12
    with client.stream("POST", "/runs/lm/generate/stream", json={"prompt": "def ", "length": 12, "temperature": 0}) as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        events = [block for block in s.read().decode().split("\n\n") if block]
    pieces = [json.loads(b[len("data: "):])["text"] for b in events if b.startswith("data: ")]
    assert events[-1].startswith("event: done") and len(pieces) == 1 + 12
    assert "".join(pieces) == text  # greedy: the stream is the whole answer, piece by piece


def test_neuron_view(client):
    r = client.post("/runs/lm/neurons", json={"text": "def f(x):", "layer": 1}).json()
    assert r["tokens"] == list("def f(x):") and r["units"] == 16 and r["layer"] == 1
    assert len(r["activations"]) == 9 and all(len(row) == 16 for row in r["activations"])
    assert all(-1 <= v <= 1 for row in r["activations"] for v in row)  # an LSTM's h = o * tanh(c)
    assert set(r["saturation"]) == {"layer 0", "layer 1"}
    assert set(r["saturation"]["layer 0"]) == {"i", "f", "g", "o"}
    bad = client.post("/runs/lm/neurons", json={"text": "abc", "layer": 2})
    assert bad.status_code == 422 and "this run has 2 layer(s)" in bad.json()["error"]


def test_classify_tag_translate(client):
    r = client.post("/runs/classify/classify", json={"inputs": ["I love it", "so bad"]}).json()
    assert [x["input"] for x in r] == ["I love it", "so bad"]
    for x in r:
        assert set(x["probabilities"]) == {"pos", "neg"} and abs(sum(x["probabilities"].values()) - 1) < 1e-5
        assert x["label"] == max(x["probabilities"], key=x["probabilities"].get)
    (t,) = client.post("/runs/tag/tag", json={"inputs": ["Maria visited Lima ."]}).json()
    assert t["tokens"] == ["Maria", "visited", "Lima", "."] and len(t["tags"]) == 4
    for e in t["entities"]:
        assert " ".join(t["tokens"][e["start"]:e["end"]]) == e["text"]
    (tr,) = client.post("/runs/translate/translate", json={"inputs": ["Hello."], "beam": 3, "nbest": 2}).json()
    assert tr["source"] == "Hello." and len(tr["nbest"]) == 2
    h = tr["nbest"][0]
    assert len(h["attention"]) == len(h["tokens"]) and len(h["attention"][0]) == len(h["source_tokens"])
    assert all(abs(sum(row) - 1) < 1e-2 for row in h["attention"])


def test_forecast_from_the_example(client):
    route = next(r for run in client.get("/runs").json() if run["task"] == "forecast" for r in run["routes"])
    r = client.post(route["path"], json=route["example"])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["horizon"] == 3 and len(out["forecast"]) == 3
    assert all({"time", "target", "forecast"} <= set(row) for row in out["forecast"])
    assert "plot" not in out
    plotted = client.post(route["path"], json={**route["example"], "plot": True}).json()
    assert plotted["forecast"] == out["forecast"] and plotted["plot"].lstrip().startswith("<?xml")
    assert "<svg" in plotted["plot"]
    short = client.post(route["path"], json={"series": route["example"]["series"][:4]})
    assert short.status_code == 422 and "the network reads the last 12" in short.json()["error"]
    wrong = client.post(route["path"], json={"series": [{"time": 1, "x": 2}] * 20})
    assert wrong.status_code == 422 and "no column" in wrong.json()["error"]


def test_transcribe_an_upload(client, tiny_runs, tmp_path, sine_wav):
    need(tiny_runs, "asr")
    wav = sine_wav(tmp_path / "a.wav", seconds=0.5, rate=8000)
    r = client.post("/runs/asr/transcribe", files={"audio": ("a.wav", wav.read_bytes(), "audio/wav")},
                    data={"timings": "true", "beam": "2"})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["text"], str) and r.json()["seconds"] == 0.5 and "words" in r.json()
    not_audio = client.post("/runs/asr/transcribe", files={"audio": ("a.wav", b"RIFF but not really", "audio/wav")})
    assert not_audio.status_code == 415 and not_audio.json()["expected"] == "a WAV, FLAC or OGG sound file"
    long = sine_wav(tmp_path / "long.wav", seconds=3.0, rate=8000)
    too_long = client.post("/runs/asr/transcribe", files={"audio": ("long.wav", long.read_bytes(), "audio/wav")})
    assert too_long.status_code == 413 and "--max-audio-seconds" in too_long.json()["expected"]
    path_in_json = client.post("/runs/asr/transcribe", json={"audio": "/etc/passwd"})  # never a server path
    assert path_in_json.status_code == 422 and "multipart" in path_in_json.json()["error"]
    missing = client.post("/runs/asr/transcribe", data={"beam": "2"})
    assert missing.status_code == 422 and missing.json()["field"] == "audio"
    bad_beam = client.post("/runs/asr/transcribe", files={"audio": ("a.wav", wav.read_bytes())}, data={"beam": "x"})
    assert bad_beam.status_code == 422 and bad_beam.json()["field"] == "beam"


def _png(colour: str, size=(40, 30)) -> bytes:
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_caption_an_upload(client, tiny_runs):
    need(tiny_runs, "caption")
    image = {"image": ("red.png", _png("red"), "image/png")}
    r = client.post("/runs/caption/caption", files=image, data={"beam": "3", "max_len": "6"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["caption"] == " ".join(out["words"]) and len(out["words"]) <= 5
    rows, cols = out["grid"]
    assert len(out["attention"]) == len(out["words"]) and all(len(a) == rows * cols for a in out["attention"])
    assert all(abs(sum(a) - 1) < 1e-2 for a in out["attention"])  # each word's weights over the grid
    greedy = client.post("/runs/caption/caption", files=image, data={"beam": "1"})
    assert greedy.status_code == 200 and greedy.json()["caption"] == greedy.json()["caption"].strip()
    not_image = client.post("/runs/caption/caption", files={"image": ("x.png", b"PNG? no", "image/png")})
    assert not_image.status_code == 415 and "PNG, JPEG" in not_image.json()["expected"]
    bad_beam = client.post("/runs/caption/caption", files=image, data={"beam": "0"})
    assert bad_beam.status_code == 422 and bad_beam.json()["field"] == "beam"
    too_long = client.post("/runs/caption/caption", files=image, data={"max_len": "501"})
    assert too_long.status_code == 422 and "--max-length" in too_long.json()["expected"]
    missing = client.post("/runs/caption/caption", data={"beam": "2"})
    assert missing.status_code == 422 and missing.json()["field"] == "image"


def test_tag_an_image_upload(client, tiny_runs):
    need(tiny_runs, "tag-images")
    r = client.post("/runs/tag-images/tag-image", files={"image": ("blue.png", _png("blue", (20, 50)), "image/png")})
    assert r.status_code == 200, r.text
    out = r.json()
    known = TASKS["tag-images"].load(tiny_runs["tag-images"]).vocab.tokenizer.tokens[1:]
    assert set(out["scores"]) == set(known) and set(out["tags"]) <= set(known)
    assert list(out["scores"].values()) == sorted(out["scores"].values(), reverse=True)
    assert all(0.0 <= s <= 1.0 for s in out["scores"].values())
    extra = client.post("/runs/tag-images/tag-image", files={"image": ("b.png", _png("blue"))}, data={"beam": "2"})
    assert extra.status_code == 422 and "with fields image (required)" in extra.json()["expected"]
    not_image = client.post("/runs/tag-images/tag-image", files={"image": ("b.png", b"\x89PNG broken")})
    assert not_image.status_code == 415


def test_speak_and_speech_translate(client, tiny_runs, tmp_path, sine_wav):
    import io

    import soundfile
    need(tiny_runs, "tts")
    r = client.post("/runs/tts/speak", json={"text": "Hello.", "speed": 1.5, "pitch_shift": 2})
    assert r.status_code == 200, r.text
    audio, rate = soundfile.read(io.BytesIO(base64.b64decode(r.json()["wav"])))
    assert rate == r.json()["sample_rate"] and len(audio) / rate == pytest.approx(r.json()["seconds"], abs=1e-3)
    slow = client.post("/runs/tts/speak", json={"text": "Hello.", "speed": 10})
    assert slow.status_code == 422 and slow.json()["field"] == "speed"
    assert client.post("/runs/tts/speak", json={"text": " "}).json()["field"] == "text"
    need(tiny_runs, "speech-translate")
    wav = sine_wav(tmp_path / "a.wav", seconds=0.5, rate=8000)
    r = client.post("/runs/speech-translate/speech-translate", files={"audio": ("a.wav", wav.read_bytes())})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["text"], str) and r.json()["seconds"] == 0.5
    not_audio = client.post("/runs/speech-translate/speech-translate", files={"audio": ("a.wav", b"nope")})
    assert not_audio.status_code == 415


def test_music_piece(client, tiny_runs, tmp_path):
    need(tiny_runs, "music")
    r = client.post("/runs/music/music", json={"length": 8, "seed": 1, "temperature": 0.5})
    assert r.status_code == 200, r.text
    out = r.json()
    assert base64.b64decode(out["midi"])[:4] == b"MThd" and base64.b64decode(out["wav"])[:4] == b"RIFF"
    assert out["frames"] == 8 and len(out["roll"]) == 8
    primer = client.post("/runs/music/music", files={"primer": ("p.mid", b"not midi", "audio/midi")})
    assert primer.status_code == 415 and "MIDI" in primer.json()["expected"]
    with client.stream("POST", "/runs/music/music/stream", json={"length": 6, "seed": 1, "temperature": 0.5}) as s:
        events = [json.loads(b[len("data: "):]) for b in s.read().decode().split("\n\n") if b.startswith("data: ")]
    assert [e["frame"] for e in events[:-1]] == list(range(6))  # each frame as it is sampled, then the piece
    piece = events[-1]["piece"]
    assert piece["frames"] == 6 and piece["roll"] == [e["pitches"] for e in events[:-1]]
    from rnnkit.data.midi import write_midi
    write_midi([(60, 0, 2), (64, 2, 4)], tmp_path / "p.mid")
    primed = client.post("/runs/music/music", files={"primer": ("p.mid", (tmp_path / "p.mid").read_bytes())},
                         data={"length": "4", "seed": "2"})
    assert primed.status_code == 200 and primed.json()["primer_frames"] > 0
    assert primed.json()["frames"] == primed.json()["primer_frames"] + 4


@pytest.mark.parametrize("path, body, status, field, says", [
    ("/runs/lm/generate", {"prompt": ""}, 422, "prompt", "not empty"),
    ("/runs/lm/generate", {"prompt": "   "}, 422, "prompt", "not empty"),
    ("/runs/lm/generate", {"length": 5}, 422, "prompt", "a string"),
    ("/runs/lm/generate", {"prompt": "x", "length": "five"}, 422, "length", "an integer >= 0"),
    ("/runs/lm/generate", {"prompt": "x", "length": 501}, 422, "length", "at most 500 (--max-length)"),
    ("/runs/lm/generate", {"prompt": "x", "top_p": 2}, 422, "top_p", "<= 1"),
    ("/runs/lm/generate", {"prompt": "x", "colour": "red"}, 422, None, "with fields prompt (required)"),
    ("/runs/lm/generate", ["x"], 422, None, "an object"),
    ("/runs/lm/generate/stream", {"prompt": "x", "temperature": -1}, 422, "temperature", ">= 0"),
    ("/runs/classify/classify", {"inputs": []}, 422, "inputs", "at least 1 item"),
    ("/runs/classify/classify", {"inputs": "I love it"}, 422, "inputs", "a list"),
    ("/runs/tag/tag", {"inputs": [""]}, 422, "inputs.0", "not empty"),
    ("/runs/translate/translate", {"inputs": ["Hello."], "beam": 0}, 422, "beam", ">= 1"),
    ("/runs/nope/generate", {"prompt": "x"}, 404, "run", "one of: lm"),
    ("/runs/lm/nope", {"prompt": "x"}, 404, "route", "one of: generate, neurons"),
])
def test_bad_requests(client, path, body, status, field, says):
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["field"] == field and says in err["expected"], err
    assert client.get("/health").status_code == 200  # still serving


def test_malformed_json_and_wrong_content(client):
    r = client.post("/runs/lm/generate", content=b'{"prompt": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("malformed JSON")
    r = client.post("/runs/lm/generate", files={"prompt": ("x.txt", b"hi")})
    assert r.status_code == 415 and "takes a JSON body" in r.json()["error"]
    r = client.get("/nothing/here")
    assert r.status_code == 404 and "POST /runs/lm/generate" in r.json()["expected"]
    r = client.get("/runs/lm/generate")
    assert r.status_code == 405 and r.json()["expected"] == "one of: POST"
