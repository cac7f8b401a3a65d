"""The cpp kernels' per-step products (csrc/common.h StepMatrix, csrc/panel_mm.cpp, csrc/panel_avx2.cpp):
every route gives a @ w (or out + a @ w) on row blocks with strides, writes nothing outside the block, and
float32 takes the AVX-512 panel route on a CPU that has it, the AVX2 one on a CPU with AVX2 but no AVX-512
(the speed claim lives in bench/RESULTS.md)."""
import pytest
import torch
from torch.testing import assert_close

from rnnkit.engines.cpp import build

from cpp_checks import two_threads


def _ops():
    try:
        return build.kernels()
    except build.CppBuildError as exc:  # pragma: no cover - CI has a compiler
        pytest.skip(str(exc))


def _capability() -> str:
    try:
        return torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # pragma: no cover - old torch
        return "DEFAULT"


# rows: tiles of 12, 8, 4 and single rows; N: whole 32- and 24-column panels and partial ones; K: odd, 1
SHAPES = [(4, 3, 5), (13, 7, 37), (16, 128, 512), (17, 129, 100), (5, 1, 33), (32, 256, 1024), (40, 512, 96),
          (7, 9, 24), (6, 11, 50)]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_step_product_on_a_strided_block(shape, accumulate, threads):
    M, K, N = shape
    gen = torch.Generator().manual_seed(M * 1000 + N)
    a = torch.randn(M + 3, K + 5, generator=gen)[1:M + 1, 2:K + 2]  # row stride K + 5
    w = torch.randn(K, N, generator=gen)
    big = torch.randn(M + 2, N + 7, generator=gen)
    before = big.clone()
    out = big[1:M + 1, 3:N + 3]  # row stride N + 7
    if threads == 2:
        with two_threads():
            route = _ops().step_matmul(a, w, out, accumulate)
    else:
        route = _ops().step_matmul(a, w, out, accumulate)
    want = a.double() @ w.double() + (before[1:M + 1, 3:N + 3].double() if accumulate else 0)
    assert_close(out, want.float(), atol=2e-5 * K ** 0.5, rtol=1e-5)
    outside = torch.ones_like(big, dtype=torch.bool)
    outside[1:M + 1, 3:N + 3] = False
    assert torch.equal(big[outside], before[outside])
    assert route in ("panels", "avx2_panels", "mkl_packed", "aten")
    if _capability().startswith("AVX512"):
        assert route == "panels"
    elif _capability() == "AVX2":
        assert route == "avx2_panels"


def test_few_rows_and_double_take_their_own_routes():
    a, w = torch.randn(3, 8), torch.randn(8, 40)
    out = torch.empty(3, 40)
    assert _ops().step_matmul(a, w, out, False) == "few_rows"
    assert_close(out, a @ w)
    a64, w64 = torch.randn(6, 8, dtype=torch.float64), torch.randn(8, 40, dtype=torch.float64)
    out64 = torch.empty(6, 40, dtype=torch.float64)
    assert _ops().step_matmul(a64, w64, out64, False) == "aten"
    assert_close(out64, a64 @ w64)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (8, 8), (37, 19), (100, 9), (512, 128), (300, 260)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_transposed_copy_equals_torchs(shape, dtype):
    """The kernels' tiled transpose (8 x 8 AVX blocks for float, scalar edges) is w.t().contiguous()
    exactly, for every edge case of the blocking, also for a block of a wider matrix's rows or columns."""
    from rnnkit.engines.cpp.gemm import transposed

    _ops()
    w = torch.randn(shape[0] + 2, shape[1] + 3).to(dtype)
    for view in (w, w[1:shape[0] + 1], w[:, 2:shape[1] + 2]):
        got = transposed(view)
        assert got.is_contiguous() and torch.equal(got, view.t().contiguous())
