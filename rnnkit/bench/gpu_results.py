"""Format rnnkit.bench.gpu JSON files as the markdown tables of bench/RESULTS.md (## GPU).
Later files override rows (same part, cell, shape, dtype, mode, peer) of earlier ones.

    python -m rnnkit.bench.gpu_results run1.json [run2.json ...]
"""
import json
import sys


def load(paths):
    rows, machines = {}, []
    for path in paths:
        d = json.load(open(path))
        machines.append(d["machine"])
        for r in d["rows"]:
            rows[(r["part"], r["name"], tuple(r["shape"]), r["dtype"], r["mode"], r["peer"])] = r
    return machines, list(rows.values())


def rnn_table(rows, part):
    out = ["| cell | (B, T, H) | dtype | engine | train ms (peer) | train ratio | infer ms (peer) | infer ratio | target | plan |",
           "|---|---|---|---|---:|---:|---:|---:|---|---|"]
    keyed = {}
    for r in rows:
        if r["part"] == part:
            keyed.setdefault((r["name"], tuple(r["shape"]), r["dtype"]), {})[r["mode"]] = r
    for (name, shape, dtype), m in keyed.items():
        t, i = m.get("train"), m.get("infer")
        tgt = t["target"] if t else None
        met = "" if tgt is None else (f">= {tgt:g}x: " + ("met" if t["ratio"] >= tgt and (not i or i["ratio"] >= 1.0 or part == "custom") else "MISSED"))
        cell = lambda r: f"{r['ms']:.2f} ({r['peer_ms']:.2f})" if r else ""  # noqa: E731
        ratio = lambda r: f"{r['ratio']:.2f}x" if r else ""  # noqa: E731
        out.append(f"| {name} | {shape} | {dtype} | {t['engine'] if t else i['engine']} | {cell(t)} | {ratio(t)} | "
                   f"{cell(i)} | {ratio(i)} | {met} | {(t or i).get('note', '')} |")
    return "\n".join(out)


def scan_table(rows):
    out = ["| cell | (B, T, H) | dtype | fused train ms | vs plain-torch log-space scan | vs torch.nn.GRU (cuDNN) | vs rnnkit scan (torch) | kernels fwd+bwd | % of copy bandwidth |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    keyed = {}
    for r in rows:
        if r["part"] in ("scan", "kernel"):
            name = r["name"].replace(" scan kernels", "")
            keyed.setdefault((name, tuple(r["shape"]), r["dtype"]), {})[r["peer"]] = r
    for (name, shape, dtype), m in keyed.items():
        p = m.get("plain-torch log-space scan")
        g = m.get("torch.nn.GRU")
        s = m.get("rnnkit scan engine (torch, chunked)")
        k = m.get("device copy")
        f = lambda r: f"{r['ratio']:.2f}x ({r['peer_ms']:.2f} ms)" if r else ""  # noqa: E731
        out.append(f"| {name} | {shape} | {dtype} | {p['ms']:.2f} | {f(p)} | {f(g)} | {f(s)} | "
                   f"{k['ms']:.2f} ms ({k['note']}) | {100 * k['ratio']:.0f}% |")
    return "\n".join(out)


def main(argv=None) -> None:
    machines, rows = load(sys.argv[1:] if argv is None else argv)
    print("Runs: " + "; ".join(machines) + "\n")
    print("LSTM / GRU (triton engine vs torch.nn on cuDNN):\n")
    print(rnn_table(rows, "rnn") + "\n")
    print("Cells torch lacks (vs torch.nn.LSTM / GRU at the same shape):\n")
    print(rnn_table(rows, "custom") + "\n")
    print("minGRU / minLSTM (B=16, H=512, training step incl. the input projection):\n")
    print(scan_table(rows))


if __name__ == "__main__":
    main()
