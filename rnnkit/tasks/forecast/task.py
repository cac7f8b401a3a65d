"""The forecast task as the registry sees it (:class:`ForecastTask`)."""
from __future__ import annotations

from typing import Any, Mapping

import torch

from rnnkit.config import ConfigError
from rnnkit.tasks.forecast.config import TRAIN_DEFAULTS, ForecastRunConfig, upgrade_config
from rnnkit.tasks.forecast.pipeline import TASK, evaluate_forecast, load_forecaster, predict_forecast, train_forecast
from rnnkit.tasks.compare import compare_networks
from rnnkit.tasks.runs import print_table
from rnnkit.tasks.forecast import serve
from rnnkit.tasks.task import Task, distribution
from rnnkit.tasks.forecast.export import forecast_graphs


def print_backtest(metrics: dict) -> None:
    cols = ["model"] + [k for k in ("mae", "rmse", "smape", "mase", "coverage", "accuracy")
                        if any(k in m for m in metrics.values())]
    print_table([{"model": name, **m} for name, m in metrics.items()], cols)


def backtest_rows(name: str, result: dict) -> list[dict]:
    """The network's row, then the baselines of the same backtest (their cost is not the network's)."""
    common = {"parameters": result["parameters"], "train_s": result["elapsed_s"]}
    return [{"model": model, **m, **(common if model == name else {"parameters": "", "train_s": ""})}
            for model, m in result["test"].items()]


class ForecastTask(Task):
    name = TASK
    help = "a forecaster on a time series, backtested against baselines (default: CO2)"
    evaluate_help = "rolling-origin MAE / RMSE / sMAPE / MASE of the network and the baselines on a series file"
    predict_help = "the next horizon steps after the end of the --data series, with intervals"
    run_config = ForecastRunConfig
    presets_package = "rnnkit.tasks.forecast.presets"
    train_defaults = TRAIN_DEFAULTS
    compare_metrics = ("mae", "rmse", "smape", "mase")

    def upgrade_config(self, saved: dict) -> dict:
        return upgrade_config(saved)

    def train(self, cfg: ForecastRunConfig, run_dir, *, resume=False, given: frozenset = frozenset(),
              callbacks=()):
        return train_forecast(cfg, run_dir, resume=resume, callbacks=callbacks)

    def report(self, result: dict, run_dir) -> None:
        refit_note = f", refit on train + validation {result['refit_s']:.0f} s" if result.get("refit") else ""
        print(f"{result['parameters']} parameters, {result['steps']} updates in {result['fit_s']:.0f} s "
              f"(stopped: {result['stopped']}){refit_note}")
        print(f"backtest on the test part: {result['origins']} origins x horizon {result['horizon']} "
              f"(season {result['season']})")
        print_backtest(result["test"])
        print(f"run saved in {run_dir}/")

    def load(self, run, which: str = "best", device: str = "cpu"):
        return load_forecaster(run)

    def evaluate(self, run, data: str, options: Mapping[str, Any]) -> dict:
        return evaluate_forecast(run, data)

    def print_evaluation(self, metrics: dict, data: str) -> None:
        print_backtest(metrics)

    def add_predict_arguments(self, group) -> None:
        group.add_argument("--data", default="", help="forecast: the series to continue (CSV/TSV/JSONL with "
                           "the run's columns)")

    def predict(self, run, inputs: list[str], options: Mapping[str, Any]) -> list[dict]:
        if not options.get("data"):
            raise ConfigError("forecast runs need --data FILE: the series to continue")
        return predict_forecast(run, options["data"])

    def print_predictions(self, rows: list[dict], options: Mapping[str, Any]) -> None:
        print_table(rows, list(rows[0]))

    def compare(self, args) -> tuple[list[dict], list[str]]:
        # the baselines run once, with the first network's backtest
        return compare_networks(self, args, list(self.compare_metrics), backtest_rows, lambda cfg: [],
                                first_only={"data": {"baselines": ""}})

    def example_inputs(self, loaded) -> tuple:
        cfg, meta = loaded.config, loaded.meta
        batch = {"inputs": torch.zeros(1, cfg.model.lookback, len(meta["names"])),  # (B, L, C)
                 "position": torch.zeros(1, dtype=torch.int64)}                     # (B,) ES-RNN's seasonal phase
        if loaded.model.n_future:
            batch["future"] = torch.zeros(1, cfg.data.horizon, loaded.model.n_future)  # (B, H, n_future)
        return (batch,)

    def export_graphs(self, loaded) -> list:
        return forecast_graphs(loaded)

    def search_space(self) -> dict[str, dict]:
        return {**super().search_space(),
                "model.layers": distribution("int", low=1, high=2),
                # 0: the default rule (one season, else 24, shortened for short series)
                "model.lookback": distribution("categorical", choices=[0, 12, 24, 48, 96])}

    def serve_routes(self, loaded) -> list:
        return serve.routes(loaded)
