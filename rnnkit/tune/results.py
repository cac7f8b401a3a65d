"""What a study leaves in its output folder, rebuilt from the storage alone (any machine can write it):

* ``trials.json`` and the printed table - one row per trial: state, value, seconds, parameters, run directory,
  and why it failed or where it was pruned;
* ``best.yaml`` - the best trial's settings; ``rnnkit train TASK --config best.yaml`` trains that run again;
* ``plots/history.png`` and ``plots/importances.png`` - Optuna's optimisation history and parameter
  importances (fANOVA, seeded), drawn with matplotlib.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from rnnkit.atomic import atomic_save, atomic_write_text
from rnnkit.tasks.runs import print_table, write_json


def trial_rows(study: optuna.Study) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        note = t.user_attrs.get("error", "")
        if t.state == TrialState.PRUNED and t.intermediate_values:
            note = f"pruned at update {max(t.intermediate_values)}"
        if t.user_attrs.get("interrupted"):
            note = "interrupted (queued again)"
        if t.user_attrs.get("baseline"):
            note = "the task's settings" + (f"; {note}" if note else "")
        rows.append({"trial": t.number, "state": t.state.name.lower(), "value": t.value,
                     "seconds": round(seconds, 1) if seconds is not None else None,
                     "updates": max(t.intermediate_values) if t.intermediate_values else None,
                     **{k: v for k, v in t.params.items()}, "run_dir": t.user_attrs.get("run_dir", ""),
                     "note": note})
    return rows


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return study.best_trial if done else None


def write_results(study: optuna.Study, out: Path, task: str, log=print) -> Path | None:
    """Table, ``trials.json``, ``best.yaml`` and plots; returns the path of ``best.yaml`` (None: no trial
    completed, which is said)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(study)
    params = sorted({k for t in study.get_trials(deepcopy=False) for k in t.params})
    write_json(out / "trials.json", rows)
    if rows:
        shown = [{k: ("" if v is None else v) for k, v in r.items()} for r in rows]
        print_table(shown, ["trial", "state", "value", "seconds", "updates", *params, "note"], floats="{:.4g}")
    best = best_trial(study)
    if best is None:
        log(f"no trial completed, so there is no best.yaml; see the notes above and {out / 'trials.json'}")
        return None
    if "settings" not in best.user_attrs:
        log(f"the best trial, {best.number}, was not run by rnnkit tune (no settings recorded): no best.yaml")
        return None
    path = out / "best.yaml"
    atomic_write_text(path, f"# best of study {study.study_name!r}: trial {best.number}, value {best.value:.6g}\n"
                      + yaml.safe_dump(json.loads(best.user_attrs["settings"]), sort_keys=False))
    log(f"best: trial {best.number}, value {best.value:.6g} ({best.user_attrs.get('run_dir', '')}); "
        f"train it again with: rnnkit train {task} --config {path}")
    for name, why in write_plots(study, out / "plots").items():
        log(f"plot {name}: {why}")
    return path


def write_plots(study: optuna.Study, folder: Path) -> dict[str, str]:
    """``history.png`` and ``importances.png``; returns ``{name: path or why it was not drawn}``."""
    from rnnkit.train.plots import plt  # matplotlib with the Agg backend, imported only when plotting
    from optuna.visualization import matplotlib as ovm

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    drawn: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = ovm.plot_optimization_history(study)
        drawn["history.png"] = _save(plt, ax.figure, folder / "history.png")
        varied = [k for k in {k for t in done for k in t.params} if len({repr(t.params.get(k)) for t in done}) > 1]
        if len(done) < 2 or not varied or len({t.value for t in done}) < 2:
            drawn["importances.png"] = ("not drawn: it needs completed trials that differ in a parameter and "
                                        "in value")
        else:
            # fANOVA (Hutter et al. 2014) with a fixed seed: the same study draws the same bars
            ax = ovm.plot_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
            drawn["importances.png"] = _save(plt, ax.figure, folder / "importances.png")
    return drawn


def _save(plt, fig, path: Path) -> str:
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return str(path)
