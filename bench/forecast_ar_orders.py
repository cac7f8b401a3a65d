"""The linear AR baseline of the forecast backtest at fixed orders beside the order AIC chooses, on the real series.

Context for docs/forecast.md: how much the table's AR (order by AIC on the part before the test part) depends on
its order.  Same protocol as ``rnnkit train forecast`` defaults: 15% / 15% split (at least one horizon each),
the AR fitted on train + validation, an origin every step over the test part, MASE scaled by the seasonal-naive
MAE of the training part.  Fixed orders are read off the test part: they are not a baseline anyone could choose.

    python bench/forecast_ar_orders.py [--root DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from forecast_real import DEFAULT_ROOT, SERIES
from rnnkit.metrics import forecast_metrics, mase_scale
from rnnkit.tasks.baselines.forecasting import LinearAR
from rnnkit.tasks.forecast.data import origins, part_sizes, read_series
from rnnkit.tasks.forecast.pipeline import longest_period, season_from_times

ORDERS = (3, 12, 24, 48, 96, 168, 336)


def row(name: str, root: Path) -> str:
    rel, opts = SERIES[name]
    target = opts[opts.index("--target") + 1]
    horizon = int(opts[opts.index("--horizon") + 1]) if "--horizon" in opts else 12
    s = read_series(root / rel, [target], [], "", "error")
    y, n, m = s.targets, len(s), season_from_times(s.times)
    n_val, n_test = part_sizes(n, 0.15, 0.15, horizon)
    n_fit = n - n_test
    n_train = n_fit - n_val if n_fit - n_val > m else n_fit          # no validation part: as the pipeline
    scale = mase_scale(y[:n_train, 0], m)
    test = origins(n_fit, n, 1, horizon)
    actual = np.stack([y[o:o + horizon, 0] for o in test])

    def mase(ar: LinearAR) -> float:
        return forecast_metrics(actual, ar.fit(y, n_fit).forecast(y, test)[..., 0], scale)["mase"]
    aic = LinearAR(None, horizon, season=m, longest=longest_period(m))
    cells = [f"{mase(aic):.4f} ({aic.orders[0]})"]
    for p in ORDERS:
        try:
            cells.append(f"{mase(LinearAR(p, horizon)):.4f}")
        except ValueError:                                           # too many lags for the fit part
            cells.append("-")
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    args = p.parse_args()
    print("| series | AR by AIC (lags) | " + " | ".join(f"{o} lags" for o in ORDERS) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in ORDERS) + " |")
    for name in SERIES:
        print(row(name, args.root), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
