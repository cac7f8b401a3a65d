"""What ``rnnkit serve`` offers for a forecast run: the next horizon steps after a posted series, with
intervals, and on request the plot of the series' end, the forecast and its interval (SVG)."""
from __future__ import annotations

import math

from rnnkit.data.tabular import Table
from rnnkit.tasks.forecast.pipeline import LoadedForecaster, forecast_table
from rnnkit.tasks.serving import Route, obj

MAX_ROWS = 100_000


def _table(rows: list[dict]) -> Table:
    """The posted rows as a table; an error names the row as ``series:N`` (N from 1)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return Table("series", columns, [dict(r) for r in rows], list(range(1, len(rows) + 1)))


def forecast(loaded: LoadedForecaster, request: dict) -> dict:
    d = loaded.config.data
    targets = loaded.meta["names"][:loaded.meta["n_targets"]]
    rows = forecast_table(loaded, _table(request["series"]))
    out = {"forecast": rows, "time_column": d.time_column, "targets": targets,
           "lookback": loaded.config.model.lookback, "horizon": d.horizon, "interval": d.interval}
    if request.get("plot"):
        out["plot"] = plot_svg(request["series"], rows, targets[0], 4 * loaded.config.model.lookback)
    return out


def plot_svg(series: list[dict], rows: list[dict], target: str, shown: int) -> str:
    """The last ``shown`` observed values of ``target``, the forecast after them and its interval, as SVG."""
    import io

    from matplotlib.figure import Figure  # no pyplot: figures of concurrent requests share no global state
    observed = [(i, r[target]) for i, r in enumerate(series) if isinstance(r.get(target), (int, float))][-shown:]
    ahead = [r for r in rows if r["target"] == target and "forecast" in r]
    steps = range(len(series), len(series) + len(ahead))
    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot()
    ax.plot([i for i, _ in observed], [v for _, v in observed], color="black", lw=1.2, label=f"observed {target}")
    ax.plot(steps, [r["forecast"] for r in ahead], color="tab:blue", lw=1.6, label="forecast")
    if ahead and "lower" in ahead[0]:
        ax.fill_between(steps, [r["lower"] for r in ahead], [r["upper"] for r in ahead], color="tab:blue",
                        alpha=0.2, label="interval")
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()


def example(loaded: LoadedForecaster) -> dict:
    """A series of the run's columns around their training means (a season-long wave), long enough to forecast
    from: something to start from on the page, not data."""
    names, season = loaded.meta["names"], max(int(loaded.meta.get("season") or 12), 2)
    n = loaded.config.model.lookback + season
    time = loaded.config.data.time_column or "time"
    rows = []
    for t in range(n):
        wave = math.sin(2 * math.pi * t / season)
        rows.append({time: t + 1, **{c: round(float(m + s * wave), 4) for c, m, s in
                                     zip(names, loaded.scaler.mean, loaded.scaler.std)}})
    return {"series": rows}


def routes(loaded: LoadedForecaster) -> list[Route]:
    row = {"type": "object", "minProperties": 1, "description": "one time step: the run's time, target and "
           "covariate columns"}
    schema = obj(("series",), series={"type": "array", "items": row, "minItems": 1, "maxItems": MAX_ROWS,
                                      "description": f"the series to continue, oldest first, at least "
                                      f"{loaded.config.model.lookback} rows (the run's lookback)"},
                 plot={"type": "boolean", "description": "also the plot of the series' end and the forecast (SVG)"})
    return [Route("forecast", "the next horizon steps after the series, with intervals", schema,
                  lambda r: forecast(loaded, r), panel="forecast", example=example(loaded),
                  output=obj(forecast={"type": "array", "items": {"type": "object"}}))]
