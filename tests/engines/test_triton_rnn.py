"""The fused Triton engine for LSTM, GRU (reset after) and Elman vs the reference loop: outputs,
final states, per-step states and gradients, stacked, bidirectional, with lengths and DropConnect.
On CPU through Triton's interpreter (one program, tiny shapes); on a GPU also several programs
(the grid-wide barrier), several batch tiles, and bfloat16."""
import pytest
import torch
from torch.testing import assert_close

from triton_setup import DEVICE, ON_GPU, use_engine  # noqa: F401 (sets TRITON_INTERPRET)

import rnnkit  # noqa: E402
from rnnkit.cells import ElmanCell, GRUCell, IndRNNCell, JordanCell, LSTMCell  # noqa: E402
from rnnkit.engines.base import EngineError  # noqa: E402
from rnnkit.engines.triton.ln_kernels import _combined_stats, _summed  # noqa: E402
from rnnkit.engines.triton.rnn_engine import TritonRNNEngine  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

def _ln_lstm(I, H, **kw):
    """A layer-normalised LSTM whose LayerNorm gains and biases are not 1 and 0 (so that a gain read
    in place of a bias, or one LayerNorm's parameters in place of another's, shows)."""
    cell = LSTMCell.from_options(I, H, layer_norm=True, **kw)
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            if name.startswith("ln_"):
                p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return cell


CELLS = [
    ("lstm", lambda I, H: LSTMCell.from_options(I, H)),
    ("gru", lambda I, H: GRUCell.from_options(I, H)),
    ("elman-tanh", lambda I, H: ElmanCell.from_options(I, H)),
    ("elman-relu", lambda I, H: ElmanCell.from_options(I, H, activation="relu")),
    ("peephole-lstm", lambda I, H: LSTMCell.from_options(I, H, peephole=True)),
    ("indrnn-relu", lambda I, H: IndRNNCell.from_options(I, H, recurrent_init=(-1.0, 1.0))),
    ("indrnn-tanh", lambda I, H: IndRNNCell.from_options(I, H, activation="tanh", recurrent_max=0.9,
                                                         recurrent_init=(-1.0, 1.0))),
    ("lnlstm", _ln_lstm),
    ("lnlstm-peephole", lambda I, H: _ln_lstm(I, H, peephole=True)),
    ("jordan", lambda I, H: JordanCell.from_options(I, H)),
    ("jordan-relu-sigmoid-wider", lambda I, H: JordanCell.from_options(I, H, activation="relu",
                                                                        out_activation="sigmoid",
                                                                        output_size=H + 3)),
    ("jordan-identity-no-bias", lambda I, H: JordanCell.from_options(I, H, out_activation="identity",
                                                                      bias=False)),
    ("gru-cho", lambda I, H: GRUCell.from_options(I, H, reset_after=False)),
    ("gru-cho-no-bias", lambda I, H: GRUCell.from_options(I, H, reset_after=False, bias=False)),
]
LN = CELLS[-7:-5]
JORDAN = CELLS[-5:-2]
CHO = CELLS[-2:]
# (T, B, H): on the GPU, H = 80 runs 5 programs with a grid barrier, B = 70 two batch tiles
SHAPES = [(7, 3, 5)] + ([(40, 70, 80), (64, 16, 256)] if ON_GPU else [])
TOL = dict(rtol=1e-4, atol=1e-4)


def _pair(make, T, B, H, layers=1, bidirectional=False, **kw):
    torch.manual_seed(0)
    cell = make(4, H)
    fast = rnnkit.Recurrent(cell, layers, bidirectional=bidirectional, engine="triton", **kw).to(DEVICE)
    ref = rnnkit.Recurrent(cell.clone(), layers, bidirectional=bidirectional, engine="reference", **kw).to(DEVICE)
    ref.load_state_dict(fast.state_dict())
    return fast, ref


def _compare(fast, ref, x, lengths=None, hx=None, tol=TOL):
    r1 = fast.run(x, hx, lengths=lengths, all_states=True)
    r2 = ref.run(x, hx, lengths=lengths, all_states=True)
    assert r1.engine == "triton"
    assert_close(r1.output, r2.output, **tol)
    s1 = r1.state if isinstance(r1.state, tuple) else (r1.state,)
    s2 = r2.state if isinstance(r2.state, tuple) else (r2.state,)
    for a, b in zip(s1, s2):
        assert_close(a, b, **tol)
    for d1, d2 in zip(r1.states, r2.states):
        for k in d1:
            assert_close(d1[k], d2[k], **tol)
    w = torch.randn_like(r1.output)
    loss1 = (r1.output * w).sum() + sum(s.sum() for s in s1)
    loss2 = (r2.output * w).sum() + sum(s.sum() for s in s2)
    g1 = torch.autograd.grad(loss1, list(fast.parameters()))
    g2 = torch.autograd.grad(loss2, list(ref.parameters()))
    for (name, _), a, b in zip(fast.named_parameters(), g1, g2):
        assert_close(a, b, **tol, msg=lambda m: f"grad of {name}: {m}")


@pytest.mark.parametrize("name,make", CELLS)
@pytest.mark.parametrize("T,B,H", SHAPES)
def test_fused_matches_reference(name, make, T, B, H, monkeypatch):
    engine = use_engine(monkeypatch, TritonRNNEngine())
    fast, ref = _pair(make, T, B, H)
    before = type(engine).calls
    _compare(fast, ref, torch.randn(T, B, 4, device=DEVICE))
    assert type(engine).calls == before + 1  # the fused entry point ran


@pytest.mark.parametrize("name,make", CELLS[:3] + CELLS[4:6] + LN + JORDAN[:1] + CHO[:1])
def test_fused_stacked_bidirectional_lengths_initial_state(name, make, monkeypatch):
    use_engine(monkeypatch, TritonRNNEngine())
    T, B, H = 9, 3, 6
    fast, ref = _pair(make, T, B, H, layers=2, bidirectional=True)
    x = torch.randn(T, B, 4, device=DEVICE)
    lengths = torch.tensor([9, 5, 1])
    n = 2 * 2
    if "lstm" in name:
        hx = (torch.randn(n, B, H, device=DEVICE), torch.randn(n, B, H, device=DEVICE))
    else:
        hx = torch.randn(n, B, H, device=DEVICE)
    _compare(fast, ref, x, lengths=lengths, hx=hx)


@pytest.mark.parametrize("name,make", CELLS[:2] + CELLS[4:6] + LN[:1] + JORDAN[:1] + CHO[:1])
def test_fused_dropconnect_matches_reference_with_same_mask(name, make, monkeypatch):
    use_engine(monkeypatch, TritonRNNEngine())
    fast, ref = _pair(make, 6, 2, 5, dropconnect=0.3)
    fast.train(), ref.train()
    x = torch.randn(6, 2, 4, device=DEVICE)
    torch.manual_seed(5)
    r1 = fast.run(x)
    torch.manual_seed(5)
    r2 = ref.run(x)
    assert r1.engine == "triton"
    assert_close(r1.output, r2.output, **TOL)
    g1 = torch.autograd.grad(r1.output.sum(), list(fast.parameters()))
    g2 = torch.autograd.grad(r2.output.sum(), list(ref.parameters()))
    for a, b in zip(g1, g2):
        assert_close(a, b, **TOL)


def test_fused_refuses_what_it_cannot_run(monkeypatch):
    use_engine(monkeypatch, TritonRNNEngine())
    cases = [
        (GRUCell.from_options(4, 5, layer_norm=True), {}, "layer-normalised GRU"),
        (LSTMCell.from_options(4, 5, proj_size=3), {}, "projected LSTM"),
        (ElmanCell.from_options(4, 5, activation=torch.sin), {}, "fused Elman kernel knows"),
        (ElmanCell.from_options(4, 5), {"zoneout": 0.1}, "zoneout"),
        (JordanCell.from_options(4, 5, out_activation=torch.sin), {}, "fused Jordan kernel knows"),
        (JordanCell.from_options(4, 5), {"zoneout": 0.1}, "zoneout"),
    ]
    for cell, kw, msg in cases:
        layer = rnnkit.Recurrent(cell, engine="triton", **kw).to(DEVICE)
        with pytest.raises(EngineError, match=msg):
            layer(torch.randn(3, 2, 4, device=DEVICE))


@pytest.mark.skipif(not ON_GPU, reason="bfloat16 kernels are checked on the GPU")
@pytest.mark.parametrize("name,make", CELLS[:3] + LN[:1] + JORDAN[:1] + CHO[:1])
def test_fused_bfloat16_close_to_float32_reference(name, make, monkeypatch):
    use_engine(monkeypatch, TritonRNNEngine())
    fast, ref = _pair(make, 32, 16, 128)
    x = torch.randn(32, 16, 4, device=DEVICE)
    r2 = ref.run(x)
    r1 = fast.to(torch.bfloat16).run(x.bfloat16())
    assert r1.output.dtype == torch.bfloat16
    assert_close(r1.output.float(), r2.output, rtol=2e-2, atol=2e-2)
    r1.output.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in fast.parameters())


@pytest.mark.parametrize("name,make", CELLS[:3] + LN[:1] + JORDAN[:1] + CHO[:1])
def test_fused_streaming_weights_mode(name, make, monkeypatch):
    """W_hh read per K tile each step (the mode for large H) instead of kept on chip."""
    monkeypatch.setenv("RNNKIT_TRITON_RESIDENT", "0")
    use_engine(monkeypatch, TritonRNNEngine())
    T, B, H = SHAPES[-1]
    fast, ref = _pair(make, T, B, H)
    _compare(fast, ref, torch.randn(T, B, 4, device=DEVICE), lengths=torch.randint(1, T + 1, (B,)))


@pytest.mark.parametrize("name,make", [CELLS[0], CELLS[1], CELLS[4]] + LN + CHO[:1])
def test_fused_zoneout_matches_reference_with_same_masks(name, make, monkeypatch):
    """Zoneout in training (Bernoulli masks, same seed for both) and in evaluation (the constant p),
    with lengths: outputs, final states and gradients match the reference loop."""
    use_engine(monkeypatch, TritonRNNEngine())
    fast, ref = _pair(make, 7, 3, 6, zoneout=0.4)
    x = torch.randn(7, 3, 4, device=DEVICE)
    lengths = torch.tensor([7, 3, 5])
    fast.eval(), ref.eval()
    _compare(fast, ref, x, lengths=lengths)
    fast.train(), ref.train()
    torch.manual_seed(3)
    r1 = fast.run(x, lengths=lengths)
    torch.manual_seed(3)
    r2 = ref.run(x, lengths=lengths)
    assert r1.engine == "triton"
    assert_close(r1.output, r2.output, **TOL)
    s1 = r1.state if isinstance(r1.state, tuple) else (r1.state,)
    s2 = r2.state if isinstance(r2.state, tuple) else (r2.state,)
    loss1 = r1.output.square().sum() + sum(s.sum() for s in s1)
    loss2 = r2.output.square().sum() + sum(s.sum() for s in s2)
    for a, b in zip(torch.autograd.grad(loss1, list(fast.parameters())),
                    torch.autograd.grad(loss2, list(ref.parameters()))):
        assert_close(a, b, **TOL)


@pytest.mark.parametrize("name,make", CELLS[:3] + LN[:1] + JORDAN[:1] + CHO[:1])
def test_fused_recurrent_dropout_matches_reference_with_same_mask(name, make, monkeypatch):
    """Recurrent dropout: one mask per sequence on h entering W_hh (not on GRU's z * h path)."""
    use_engine(monkeypatch, TritonRNNEngine())
    fast, ref = _pair(make, 6, 3, 5, recurrent_dropout=0.3)
    fast.train(), ref.train()
    x = torch.randn(6, 3, 4, device=DEVICE)
    torch.manual_seed(7)
    r1 = fast.run(x)
    torch.manual_seed(7)
    r2 = ref.run(x)
    assert r1.engine == "triton"
    assert_close(r1.output, r2.output, **TOL)
    for a, b in zip(torch.autograd.grad(r1.output.square().sum(), list(fast.parameters())),
                    torch.autograd.grad(r2.output.square().sum(), list(ref.parameters()))):
        assert_close(a, b, **TOL)


def _cuda_request(cell, engine="auto", dtype=torch.float32, needs_grad=True, **kw):
    return rnnkit.Recurrent(cell, engine=engine, **kw).request("cuda", dtype, steps=5, batch=2,
                                                               needs_grad=needs_grad)


def test_auto_leaves_measured_slower_configs_to_cudnn():
    """The policy row: fp32 (3xTF32) at H >= 512 in training prefers cuDNN (native) over triton; without
    gradients, at H = 256 or in bf16 it says nothing. Whether native can serve (zoneout: it cannot) and
    whether the engine was forced are the registry's business (tests/engines/test_policy.py)."""
    from rnnkit.engines import policy

    row = next(r for r in policy.POLICY if r.name == "cudnn-wide-float32")
    assert (row.prefer, row.over) == ("native", ("triton",))

    def says(H, dtype=torch.float32, needs_grad=True):
        return row.condition(_cuda_request(LSTMCell.from_options(4, H), dtype=dtype, needs_grad=needs_grad))

    assert "float32 at hidden size 512" in says(512)
    assert says(512, needs_grad=False) is None
    assert says(256) is None
    assert says(1024, torch.bfloat16) is None


def test_auto_keeps_kernels_not_yet_measured_on_a_gpu_out():
    """The policy row over triton for the LayerNorm-LSTM, reset-before GRU and Jordan kernels on CUDA (the
    next engine that can run takes them under auto; a forced engine='triton' runs them); on other
    configurations the row says nothing."""
    from rnnkit.engines import policy

    row = next(r for r in policy.POLICY if r.name == "triton-unmeasured")
    assert (row.prefer, row.over) == (policy.NEXT, ("triton",))
    assert "not yet measured on a GPU" in row.condition(_cuda_request(LSTMCell.from_options(4, 8, layer_norm=True)))
    assert "reset-before GRU" in row.condition(_cuda_request(GRUCell.from_options(4, 8, reset_after=False)))
    assert "Jordan" in row.condition(_cuda_request(JordanCell.from_options(4, 8)))
    assert row.condition(_cuda_request(LSTMCell.from_options(4, 8))) is None


@pytest.mark.skipif(ON_GPU, reason="float64 gradcheck runs through the interpreter (the GPU dots are TF32-based)")
@pytest.mark.parametrize("family", ["lstm", "gru", "elman", "peephole", "zoneout", "indrnn"])
def test_hand_written_backward_gradcheck(family):
    """gradcheck of the fused autograd Functions (the kernels compute in float32 inside, hence the
    loose tolerances), with a frozen step (lengths) in every case."""
    from rnnkit.engines.triton.rnn_engine import FusedIndRNNFunction, fused_rnn

    torch.manual_seed(0)
    T, B, H = 4, 2, 3
    d = dict(dtype=torch.float64)
    valid = torch.ones(T, B, 1, dtype=torch.bool)
    valid[3:, 1] = False
    h0 = torch.randn(B, H, **d, requires_grad=True)
    if family == "indrnn":
        xp = torch.randn(T, B, H, **d, requires_grad=True)
        u = torch.rand(H, **d).requires_grad_()
        fn = lambda xp, u, h0: FusedIndRNNFunction.apply(xp, u, h0, valid, 0)  # noqa: E731
        args = (xp, u, h0)
    else:
        fam = {"peephole": "lstm", "zoneout": "gru"}.get(family, family)
        NG = {"lstm": 4, "gru": 3, "elman": 1}[fam]
        xp = torch.randn(T, B, NG * H, **d, requires_grad=True)
        w = (0.5 * torch.randn(NG * H, H, **d)).requires_grad_()
        bn = torch.randn(H, **d, requires_grad=True) if fam == "gru" else None
        c0 = torch.randn(B, H, **d, requires_grad=True) if fam == "lstm" else None
        peep = torch.randn(3, H, **d, requires_grad=True) if family == "peephole" else None
        zone = (torch.rand(T, B, H, **d),) if family == "zoneout" else None
        names = [t for t in (xp, w, bn, h0, c0, peep) if t is not None]

        def fn(*ts):
            it = iter(ts)
            a_xp, a_w = next(it), next(it)
            a_bn = next(it) if bn is not None else None
            a_h0 = next(it)
            a_c0 = next(it) if c0 is not None else None
            a_peep = next(it) if peep is not None else None
            hs, cs = fused_rnn(a_xp, a_w, a_bn, a_h0, a_c0, valid, fam, "tanh", a_peep, zone)
            return (hs, cs) if fam == "lstm" else hs
        args = tuple(names)
    assert torch.autograd.gradcheck(fn, args, eps=1e-3, atol=1e-3, rtol=2e-3, fast_mode=True)


@pytest.mark.skipif(ON_GPU, reason="float64 gradcheck runs through the interpreter (the GPU dots are TF32-based)")
@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("extra", ["lengths", "zoneout"])
def test_layer_norm_lstm_backward_gradcheck(peephole, extra):
    """gradcheck of the layer-normalised LSTM's Function: every input with a gradient (xp, W_hh, h0,
    c0, both LayerNorms' gains and biases, peepholes), with a frozen step or zoneout masks."""
    from rnnkit.engines.triton.ln_engine import FusedLNLSTMFunction

    torch.manual_seed(0)
    T, B, H = 4, 2, 3
    d = dict(dtype=torch.float64)
    valid = None
    zone = None
    if extra == "lengths":
        valid = torch.ones(T, B, 1, dtype=torch.bool)
        valid[3:, 1] = False
    else:
        zone = (torch.rand(T, B, H, **d), torch.rand(T, B, H, **d))
    leaf = lambda *shape, scale=1.0: (scale * torch.randn(*shape, **d)).requires_grad_()  # noqa: E731
    xp, w, h0, c0 = leaf(T, B, 4 * H), leaf(4 * H, H, scale=0.5), leaf(B, H), leaf(B, H)
    lnw, lnb = (1 + 0.3 * torch.randn(4 * H, **d)).requires_grad_(), leaf(4 * H, scale=0.3)
    lcw, lcb = (1 + 0.3 * torch.randn(H, **d)).requires_grad_(), leaf(H, scale=0.3)
    args = [xp, w, h0, c0, lnw, lnb, lcw, lcb] + ([leaf(3, H)] if peephole else [])

    def fn(xp, w, h0, c0, lnw, lnb, lcw, lcb, peep=None):
        return FusedLNLSTMFunction.apply(xp, w, h0, c0, lnw, lnb, lcw, lcb, valid, peep, zone, None)

    assert torch.autograd.gradcheck(fn, tuple(args), eps=1e-3, atol=1e-3, rtol=2e-3, fast_mode=True)


@pytest.mark.skipif(ON_GPU, reason="float64 gradcheck runs through the interpreter (the GPU dots are TF32-based)")
@pytest.mark.parametrize("acts", [(0, 0), (1, 2), (2, 3)])
@pytest.mark.parametrize("extra", ["lengths", "recurrent_dropout"])
def test_jordan_backward_gradcheck(acts, extra):
    """gradcheck of the Jordan Function (xp, W_hy, W_yh, b_y, y0) with O != H, for pairs of
    (activation, output activation) among tanh, relu, sigmoid, identity; with a frozen step, or with
    a recurrent-dropout mask on the y fed back."""
    from rnnkit.engines.triton.jordan_engine import FusedJordanFunction

    torch.manual_seed(0)
    T, B, H, O = 4, 2, 3, 5
    d = dict(dtype=torch.float64)
    valid = hm = None
    if extra == "lengths":
        valid = torch.ones(T, B, 1, dtype=torch.bool)
        valid[2:, 1] = False
    else:
        hm = (torch.rand(B, O, **d) > 0.3).to(torch.float64) / 0.7
    leaf = lambda *shape: (0.7 * torch.randn(*shape, **d)).requires_grad_()  # noqa: E731
    args = (leaf(T, B, H), leaf(H, O), leaf(O, H), leaf(O), leaf(B, O))

    def fn(xp, w_hy, w_yh, b_y, y0):
        return FusedJordanFunction.apply(xp, w_hy, w_yh, b_y, y0, valid, acts[0], acts[1], hm)

    assert torch.autograd.gradcheck(fn, args, eps=1e-3, atol=1e-3, rtol=2e-3, fast_mode=True)


@pytest.mark.skipif(ON_GPU, reason="float64 gradcheck runs through the interpreter (the GPU dots are TF32-based)")
@pytest.mark.parametrize("extra", ["lengths", "zoneout", "recurrent_dropout"])
def test_reset_before_gru_backward_gradcheck(extra):
    """gradcheck of the reset-before GRU's Function (xp, W_hh, h0) with a frozen step, zoneout keep
    masks, or a recurrent-dropout mask (on h entering the products, not on the z * h path)."""
    from rnnkit.engines.triton.gru_cho_engine import FusedChoGRUFunction

    torch.manual_seed(0)
    T, B, H = 4, 2, 3
    d = dict(dtype=torch.float64)
    valid = zone = hm = None
    if extra == "lengths":
        valid = torch.ones(T, B, 1, dtype=torch.bool)
        valid[2:, 0] = False
    elif extra == "zoneout":
        zone = torch.rand(T, B, H, **d)
    else:
        hm = (torch.rand(B, H, **d) > 0.3).to(torch.float64) / 0.7
    leaf = lambda *shape: (0.7 * torch.randn(*shape, **d)).requires_grad_()  # noqa: E731
    args = (leaf(T, B, 3 * H), leaf(3 * H, H), leaf(B, H))

    def fn(xp, w, h0):
        return FusedChoGRUFunction.apply(xp, w, h0, valid, zone, hm)

    assert torch.autograd.gradcheck(fn, args, eps=1e-3, atol=1e-3, rtol=2e-3, fast_mode=True)


@pytest.mark.skipif(ON_GPU, reason="checks the partials' maths on the interpreter; a GPU runs several programs")
@pytest.mark.parametrize("width", [1, 4])
def test_layer_norm_row_statistics_combine_across_programs(width):
    """The LayerNorm kernels' row statistics from several programs' partials (the interpreter runs one
    program, so this is where NP > 1 is checked): units split 4, 4, 2 over three programs, each partial
    (mean, centred sum of squares) from its own units, combined = torch's mean and 1 / sqrt(var + eps)."""
    torch.manual_seed(0)
    B, H, BH, NP, eps = 3, 10, 4, 3, 1e-5
    v = 3.0 + torch.randn(B, width, H)  # (rows, gates, units): a mean far from 0
    part = torch.empty(NP, 2, B)
    for p in range(NP):
        own = v[:, :, p * BH:(p + 1) * BH].reshape(B, -1)
        part[p, 0] = own.mean(1)
        part[p, 1] = (own - own.mean(1, keepdim=True)).square().sum(1)
    out = torch.empty(4, B)
    _stats_probe[(1,)](part, out, B, H, eps, NP=NP, BH=BH, NPP=4, WIDTH=width, BB=4)
    flat = v.reshape(B, -1)
    assert_close(out[0], flat.mean(1))
    assert_close(out[1], 1 / torch.sqrt(flat.var(1, unbiased=False) + eps))
    assert_close(out[2], part[:, 0].sum(0))
    assert_close(out[3], part[:, 1].sum(0))


@triton.jit
def _stats_probe(part_ptr, out_ptr, B, H, EPS, NP: tl.constexpr, BH: tl.constexpr, NPP: tl.constexpr,
                 WIDTH: tl.constexpr, BB: tl.constexpr):
    """The combined row statistics and partial sums of the LayerNorm kernels, written out."""
    rows = tl.arange(0, BB)
    rmask = rows < B
    mean, rstd = _combined_stats(part_ptr, rows, rmask, B, H, EPS, NP, BH, NPP, WIDTH)
    s1, s2 = _summed(part_ptr, rows, rmask, B, NP, NPP)
    tl.store(out_ptr + rows, mean, mask=rmask)
    tl.store(out_ptr + B + rows, rstd, mask=rmask)
    tl.store(out_ptr + 2 * B + rows, s1, mask=rmask)
    tl.store(out_ptr + 3 * B + rows, s2, mask=rmask)
