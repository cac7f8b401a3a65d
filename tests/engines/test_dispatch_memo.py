"""One-step CPU calls without gradients keep their layer's last engine choice (registry.one_step_key):
the second token asks no engine again; any change of what the choice depends on walks the list again
and gives what a fresh walk gives; every other call walks the list each time."""
import pytest
import torch

from rnnkit.engines.base import Engine
from rnnkit.engines.cpp import CppEngine
from rnnkit.engines.native import NativeEngine
from rnnkit.engines.registry import REGISTRY, EngineRegistry
from rnnkit.layers import build_layer


@pytest.fixture
def asked(monkeypatch):
    """How many times native's and cpp's supports() were called."""
    calls = {"native": 0, "cpp": 0}
    for name, cls in (("native", NativeEngine), ("cpp", CppEngine)):
        real = cls.supports

        def spy(self, req, _real=real, _name=name):
            calls[_name] += 1
            return _real(self, req)

        monkeypatch.setattr(cls, "supports", spy)
    return calls


def _fresh_choice(layer, x):
    """The engine a walk of the list gives, without the kept choice."""
    req = layer._request(_prep(layer, x), False, False, False)
    return REGISTRY._decide(req, layer.engine, full=False)[0].name


def _prep(layer, x):
    from rnnkit.layers.sequence import prepare_input

    return prepare_input(x, None, layer.batch_first, layer.input_size)


def test_the_second_token_asks_no_engine(asked):
    layer = build_layer("gru", 4, 4, num_layers=2).eval()
    x = torch.randn(1, 2, 4)
    state = None
    with torch.no_grad():
        assert layer.run(x).engine == "cpp"
        first = dict(asked)
        assert first["native"] >= 1 and first["cpp"] >= 1
        for _ in range(3):
            result = layer.run(x, state)
            state = result.state
            assert result.engine == "cpp"
    assert asked == first


def test_calls_with_gradients_or_several_steps_walk_the_list_each_time(asked):
    layer = build_layer("gru", 4, 4)
    layer.run(torch.randn(1, 2, 4))  # gradients kept
    layer.run(torch.randn(1, 2, 4))
    with torch.no_grad():
        layer.run(torch.randn(3, 2, 4))
        layer.run(torch.randn(3, 2, 4))
    # native goes first for one step (and serves it with gradients), cpp for sequences: each call asked
    assert asked == {"native": 2, "cpp": 2}


@pytest.mark.parametrize("change,before,after", [
    ("train", "cpp", "native"),           # DropConnect in training: no single-step kernel, torch.gru_cell
    ("zoneout", "cpp", "reference"),      # the regularisation changed on the layer
    ("RNNKIT_CPP=0", "cpp", "native"),    # the cpp engine turned off
    ("batch", "cpp", "cpp"),
])
def test_a_change_walks_the_list_again(change, before, after, monkeypatch):
    layer = build_layer("gru", 4, 4, dropconnect=0.3).eval()
    x = torch.randn(1, 2, 4)
    with torch.no_grad():
        assert layer.run(x).engine == before
        if change == "train":
            layer.train()
        elif change == "zoneout":
            layer.regularization.zoneout = 0.2
        elif change == "RNNKIT_CPP=0":
            monkeypatch.setenv("RNNKIT_CPP", "0")
        else:
            x = torch.randn(1, 5, 4)
        assert layer.run(x).engine == after
        assert _fresh_choice(layer, x) == after


def test_autocast_and_onednn_switches_are_part_of_the_key(monkeypatch):
    layer = build_layer("lstm", 4, 4).eval()
    x = torch.randn(1, 2, 4)
    with torch.no_grad():
        layer.run(x)
        key = REGISTRY.one_step_key(layer._request(_prep(layer, x), False, False, False))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            in_autocast = REGISTRY.one_step_key(layer._request(_prep(layer, x), False, False, False))
            assert layer.run(x).engine == _fresh_choice(layer, x)
        with torch.backends.mkldnn.flags(enabled=False):
            without_onednn = REGISTRY.one_step_key(layer._request(_prep(layer, x), False, False, False))
    assert len({key, in_autocast, without_onednn}) == 3


def test_explain_gives_a_copy():
    layer = build_layer("lnlstm", 4, 4)
    x = torch.randn(1, 2, 4)
    with torch.no_grad():
        for _ in range(2):  # the first walks the list, the second reads the kept choice
            given = layer.explain(x)
            assert given.rejected
            given.rejected.clear()
            given.engine = "changed"
        again = layer.explain(x)
    assert again.engine == "reference" and again.rejected


class _Always(Engine):
    name = "always"

    def __init__(self):
        self.asked = 0

    def supports(self, req):
        self.asked += 1
        return None


class _Never(Engine):
    name = "never"

    def supports(self, req):
        return "never serves"


def _one_step_request():
    layer = build_layer("gru", 4, 4)
    return layer.request("cpu", torch.float32, steps=1, batch=2)


def test_registering_an_engine_drops_kept_choices():
    reg = EngineRegistry()
    reg.register(_Never(), {"cpu": 0})
    slow = _Always()
    reg.register(slow, {"cpu": 1})
    req = _one_step_request()
    assert reg.choose(req, "auto")[0] is slow
    assert reg.choose(req, "auto")[0] is slow
    assert slow.asked == 1
    fast = _Always()
    fast.name = "fast"
    reg.register(fast, {"cpu": 0})
    assert reg.choose(req, "auto")[0] is fast


def test_an_engine_registered_without_the_memo_turns_it_off():
    reg = EngineRegistry()
    engine = _Always()
    reg.register(engine, {"cpu": 0}, one_step_memo=False)
    req = _one_step_request()
    for _ in range(3):
        assert reg.choose(req, "auto")[0] is engine
    assert engine.asked == 3
    assert reg.one_step_key(req) is None
