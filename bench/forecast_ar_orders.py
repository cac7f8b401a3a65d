"""The linear AR baseline of the forecast backtest at fixed orders beside the order AIC chooses, on the real series.

Context for docs/forecast.md: how much the table's AR (order by AIC on the part before the test part) depends on
its order.  Same protocol as ``rnnkit train forecast`` defaults: 15% / 15% split (at least one horizon each),
the AR fitted on train + validation, an origin every step over the test part, MASE scaled by the seasonal-naive
MAE of the training part.  Fixed orders are read off the test part: they are not a baseline anyone could choose.

    python bench/forecast_ar_orders.py [--root DIR] [--embedded]

``--embedded`` prints instead the AR by AIC on the embedded series of docs/tasks.md's forecasting table, with
that table's settings (its linear AR column was measured with the network's lookback as the AR's lags).
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
from rnnkit.tasks.forecast.config import ForecastDataConfig, ForecastModelConfig, ForecastRunConfig
from rnnkit.tasks.forecast.pipeline import longest_period, prepare, season_from_times

ORDERS = (3, 12, 24, 48, 96, 168, 336)
# docs/tasks.md's forecasting table: dataset -> (horizon, lookback, stride)
EMBEDDED = {"co2": (12, 24, 1), "sunspots": (10, 24, 1), "seattle-weather": (7, 24, 7), "stocks": (6, 12, 1)}


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


def embedded_row(name: str) -> str:
    horizon, lookback, stride = EMBEDDED[name]
    cfg = ForecastRunConfig(ForecastModelConfig(model="rnn", lookback=lookback),
                            ForecastDataConfig(dataset=name, horizon=horizon, stride=stride))
    prep = prepare(cfg)
    y, sp = prep.series.targets, prep.sp
    test = origins(sp.n_val_end, sp.n, lookback, horizon, stride)
    ar = LinearAR(None, horizon, season=prep.season, longest=longest_period(prep.season)).fit(y, sp.n_val_end)
    actual = np.stack([y[o:o + horizon, 0] for o in test])
    score = forecast_metrics(actual, ar.forecast(y, test)[..., 0], prep.meta["mase_scale"][0])
    return f"| `{name}` | {len(test)} | {ar.orders[0]} | {score['mae']:.3f} / {score['mase']:.3f} |"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--embedded", action="store_true", help="the embedded series of docs/tasks.md instead")
    args = p.parse_args()
    if args.embedded:
        print("| series | origins | AR lags (AIC) | MAE / MASE |\n| --- | ---: | ---: | --- |")
        for name in EMBEDDED:
            print(embedded_row(name), flush=True)
        return 0
    print("| series | AR by AIC (lags) | " + " | ".join(f"{o} lags" for o in ORDERS) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in ORDERS) + " |")
    for name in SERIES:
        print(row(name, args.root), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
