"""Tuning sweep on the GPU (one device call): launch overhead, the fused scan kernel's tile sizes,
the persistent RNN kernel's plan (BH, resident W, warps). Prints one line per variant.

    python -m rnnkit.bench.gpu_tune
"""
import os
import sys
import time

import torch

from rnnkit.bench.gpu import cuda_ms


def launch_overhead_us():
    x = torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(2000):
        x.add_(1)
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / 2000 * 1e6


def sweep_scan():
    from rnnkit.engines.triton.scan_kernels import minrnn_scan_bwd_kernel, minrnn_scan_fwd_kernel
    import triton

    T, B, H = 4096, 16, 512
    for dt in (torch.float32, torch.bfloat16):
        xp = torch.randn(T, B, 2 * H, device="cuda", dtype=dt)
        out = torch.empty(T, B, H, device="cuda", dtype=dt)
        dout = torch.randn_like(out)
        dxp = torch.empty_like(xp)
        e = xp.element_size()
        for BT in (64, 128, 256):
            for BC in (16, 32):
                for w in (4, 8):
                    def fwd():
                        minrnn_scan_fwd_kernel[(B, triton.cdiv(H, BC))](
                            xp, xp, xp, out, T, B, H, MODE=0, POSITIVE=True, HAS_H0=False,
                            HAS_VALID=False, BT=BT, BC=BC, num_warps=w)

                    def bwd():
                        minrnn_scan_bwd_kernel[(B, triton.cdiv(H, BC))](
                            xp, xp, xp, out, dout, dxp, xp, T, B, H, MODE=0, POSITIVE=True, HAS_H0=False,
                            HAS_VALID=False, BT=BT, BC=BC, num_warps=w)
                    for name, fn, nbytes in (("fwd", fwd, T * B * 3 * H * e), ("bwd", bwd, T * B * 6 * H * e)):
                        try:
                            ms = cuda_ms(fn, reps=10)
                        except Exception as exc:  # noqa: BLE001 - a sweep reports failing variants
                            print(f"scan {name} {dt} BT={BT} BC={BC} w={w} FAILED {type(exc).__name__}")
                            continue
                        print(f"scan {name} {str(dt)[6:]} BT={BT} BC={BC} w={w}: {ms:.3f} ms "
                              f"{nbytes / ms / 1e6:.0f} GB/s", flush=True)


def sweep_rnn():
    import rnnkit
    from rnnkit.cells import LSTMCell
    from rnnkit.engines.registry import REGISTRY
    from rnnkit.engines.triton import register
    from rnnkit.engines.triton import rnn_engine

    register(REGISTRY)
    for (B, T, H) in ((16, 256, 256), (64, 256, 512), (64, 256, 1024)):
        for dt in (torch.float32, torch.bfloat16):
            x = torch.randn(T, B, H, device="cuda", dtype=dt, requires_grad=True)
            ref = torch.nn.LSTM(H, H).to("cuda", dt)
            with torch.no_grad():
                t_ref = cuda_ms(lambda: ref(x), reps=5)
            layer = rnnkit.Recurrent(LSTMCell.from_options(H, H), engine="triton").to("cuda", dt)
            for bh in ("", "4", "16"):
                for res in ("16384", "32768"):
                    for w in ("4", "8"):
                        os.environ.update(RNNKIT_TRITON_BH=bh, RNNKIT_TRITON_RESIDENT=res, RNNKIT_TRITON_WARPS=w)
                        p = rnn_engine.plan(B, H, 4, x.device, dt, backward=False)
                        try:
                            with torch.no_grad():
                                ms = cuda_ms(lambda: layer(x), reps=5)
                        except Exception as e:  # noqa: BLE001
                            print(f"lstm fwd {(B, T, H)} {dt} {p} FAILED {type(e).__name__}: {str(e)[:80]}")
                            continue
                        print(f"lstm fwd {(B, T, H)} {str(dt)[6:]} NP={p.NP} BH={p.BH} BB={p.BB} res={p.RESIDENT} "
                              f"w={w}: {ms:.3f} ms ({ms / T * 1e3:.2f} us/step) cudnn {t_ref:.3f}", flush=True)
            for k in ("RNNKIT_TRITON_BH", "RNNKIT_TRITON_RESIDENT", "RNNKIT_TRITON_WARPS"):
                os.environ.pop(k, None)
            # backward plan sweep (training step)
            for res in ("16384", "32768", "0"):
                for w in ("4", "8"):
                    os.environ.update(RNNKIT_TRITON_RESIDENT=res, RNNKIT_TRITON_WARPS=w)
                    p = rnn_engine.plan(B, H, 4, x.device, dt, backward=True)

                    def step():
                        layer(x)[0].float().sum().backward()
                    try:
                        ms = cuda_ms(step, reps=5)
                    except Exception as e:  # noqa: BLE001
                        print(f"lstm train {(B, T, H)} FAILED {type(e).__name__}: {str(e)[:80]}")
                        continue
                    print(f"lstm train {(B, T, H)} {str(dt)[6:]} bwd NP={p.NP} BH={p.BH} res={p.RESIDENT} w={w}: "
                          f"{ms:.3f} ms", flush=True)
            for k in ("RNNKIT_TRITON_RESIDENT", "RNNKIT_TRITON_WARPS"):
                os.environ.pop(k, None)


def main(argv=None) -> None:
    if (sys.argv[1:] if argv is None else argv) == ["scan"]:
        sweep_scan()
        return
    print(f"launch overhead: {launch_overhead_us():.1f} us per tiny torch op")
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = cuda_ms(lambda: a @ a, reps=5)
    print(f"bf16 matmul 8192^3: {2 * 8192 ** 3 / ms / 1e9:.0f} TFLOP/s")
    a = None  # free the 128 MiB matrix before the sweeps
    sweep_rnn()
    sweep_scan()


if __name__ == "__main__":
    main()
