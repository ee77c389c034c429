"""Optuna's plots of an hpo-nb study for each of hpo-nb's targets (``exp.plot_*``), as data, and
optuna-dashboard opening an hpo-nb study (SQLite and PostgreSQL URLs) through its server API.

The study is real (SQLite, built by a real ``Experiment``); only training is replaced
(``InMemoryExecutor``): accuracy depends on the learning rate, dead units on dropout, duration
on the batch size, and each trial stores a 3-epoch validation-accuracy history.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import optuna.visualization as ov
import pytest

from hpo_nb import Experiment
from hpo_nb.analysis.targets import keys, target_by_key, target_study
from hpo_nb.errors import ConfigError
from hpo_nb.executors import InMemoryExecutor
from hpo_nb.spec import TrialOutcome
from hpo_nb.views.exportable import ExportableFigure

SPACE = {"conv_blocks": 1, "filters": 8, "kernel_size": 3, "dense_layers": 0, "batch_norm": False,
         "activation": "relu", "pooling": "max", "optimizer": "adam", "dense_units": 32,
         "learning_rate": (1e-4, 1e-1), "batch_size": [16, 32, 64, 128], "dropout": (0.0, 0.5)}
SEARCHED = {"learning_rate", "batch_size", "dropout"}
N_TRIALS, FAILED = 12, 5


def _outcome(job) -> TrialOutcome:
    p, n = job.spec.params, job.spec.trial_number
    if n == FAILED:
        return TrialOutcome(n, "failed", error="RuntimeError: out of memory")
    acc = 0.95 - 0.12 * abs(math.log10(p["learning_rate"]) + 2.5)
    health = {"gradient_health": 1.0, "dead_units": p["dropout"], "saturated_units": 0.0, "overfitting_gap": 0.05,
              "learning_progress": 1.0, "loss_stability": 0.9, "health_score": 1.0 - p["dropout"] / 6}
    history = {"val_accuracy": [acc - 0.2, acc - 0.05, acc], "val_loss": [1.5, 0.8, 0.5]}
    return TrialOutcome(n, "complete", accuracy=acc, score=acc, health=health, history=history,
                        duration_s=200.0 / p["batch_size"], epochs_run=3)


def _make(root: Path, storage: str | None = None, name: str = "views") -> Experiment:
    exp = Experiment("digits", n_trials=N_TRIALS, executor=InMemoryExecutor(_outcome), progress="none",
                     runs_dir=root, name=name, search_space=SPACE, pruning=False, storage=storage)
    exp.run()
    return exp


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Experiment:
    return _make(tmp_path_factory.mktemp("runs"))


def test_target_study_carries_the_target_as_value_and_keeps_trial_numbers(exp):
    stored = {t.number: t for t in exp.study.get_trials()}
    for key in ("score", "accuracy", "dead_units", "duration_s"):
        view = target_study(exp.study, target_by_key(key))
        assert view.n_trials == N_TRIALS - 1
        assert view.study.direction == (optuna.study.StudyDirection.MINIMIZE if key in ("dead_units", "duration_s")
                                        else optuna.study.StudyDirection.MAXIMIZE)
        for t in view.study.get_trials():
            original = stored[t.number]
            if t.number == FAILED:
                assert t.state == optuna.trial.TrialState.FAIL
                continue
            expected = {"score": original.value, "accuracy": original.user_attrs["accuracy"],
                        "dead_units": original.user_attrs["health"]["dead_units"],
                        "duration_s": original.user_attrs["duration_s"]}[key]
            assert t.value == pytest.approx(expected) and t.params == original.params
            assert t.intermediate_values == {i + 1: v for i, v in
                                             enumerate(original.user_attrs["history"]["val_accuracy"])}
    assert exp.study.user_attrs.get("hpo_nb")  # the stored study is untouched
    assert len(exp.study.get_trials()) == N_TRIALS


def test_every_target_the_heatmap_has_is_offered():
    assert keys()[:3] == ["score", "accuracy", "health_score"]
    assert {"dead_units", "learning_progress", "duration_s"} <= set(keys())
    with pytest.raises(ConfigError, match="unknown target 'speed'.*accuracy"):
        target_by_key("speed")


@pytest.mark.parametrize("method, optuna_fn, trace", [
    ("plot_optimization_history", ov.plot_optimization_history, "scatter"),
    ("plot_param_importances", ov.plot_param_importances, "bar"),
    ("plot_parallel_coordinate", ov.plot_parallel_coordinate, "scatter"),  # Optuna 5 draws lines
    ("plot_slice", ov.plot_slice, "scatter"),
    ("plot_contour", ov.plot_contour, "contour"),
])
def test_plots_are_optunas_own_for_the_chosen_target(exp, method, optuna_fn, trace):
    fig = getattr(exp, method)(target="dead_units")
    assert isinstance(fig, ExportableFigure)
    assert trace in {d.type for d in fig.data}
    assert "dead units" in fig.layout.title.text and exp.name in fig.layout.title.text
    # the same figure Optuna draws on the target study: same traces, same numbers
    kwargs = {} if method == "plot_optimization_history" else {"params": sorted(SEARCHED)}
    own = optuna_fn(target_study(exp.study, target_by_key("dead_units")).study, target_name="dead units", **kwargs)
    assert [d.type for d in fig.data] == [d.type for d in own.data]
    if method == "plot_optimization_history":  # the values are the target, not the objective
        values = sorted(v for d in fig.data if d.name == "dead units" for v in d.y)
        dropouts = sorted(t.params["dropout"] for t in exp.study.get_trials() if t.number != FAILED)
        assert values == pytest.approx(dropouts)


def test_importance_follows_the_target(exp):
    def top(target: str) -> str:
        bars = exp.plot_param_importances(target=target).data[0]
        return max(zip(bars.x, bars.y), key=lambda xy: xy[0])[1]

    assert top("accuracy") == "learning_rate"
    assert top("dead_units") == "dropout"
    assert top("duration_s") == "batch_size"


def test_fixed_parameters_are_left_out_and_params_can_be_chosen(exp):
    fig = exp.plot_parallel_coordinate()
    labels = set(fig.layout.xaxis.ticktext)  # Optuna 5 draws the axes as ticks of one x axis
    assert labels == {"val accuracy", *SEARCHED}  # the objective, then the searched parameters only
    two = exp.plot_slice(params=["dropout", "batch_size"])
    assert {a.title.text for a in (two.layout.xaxis, two.layout.xaxis2)} == {"dropout", "batch_size"}
    with pytest.raises(ConfigError, match="unknown parameter"):
        exp.plot_slice(params=["nope"])


def test_intermediate_values_are_the_epoch_curves(exp):
    fig = exp.plot_intermediate_values()
    curves = [d for d in fig.data if d.type == "scatter"]
    assert len(curves) == N_TRIALS - 1 and all(list(c.x) == [1, 2, 3] for c in curves)
    assert fig.layout.xaxis.title.text == "epoch" and fig.layout.yaxis.title.text == "validation accuracy"
    loss = exp.plot_intermediate_values("val_loss")
    assert {tuple(c.y) for c in loss.data if c.type == "scatter"} == {(1.5, 0.8, 0.5)}
    with pytest.raises(ConfigError, match="epoch_metric"):
        exp.plot_intermediate_values("f1")


def test_plot_refuses_clearly(exp, tmp_path):
    with pytest.raises(ConfigError, match="unknown plot 'pie'"):
        exp.plot("pie")
    empty = Experiment("digits", n_trials=2, executor=InMemoryExecutor(_outcome), progress="none",
                       runs_dir=tmp_path, name="empty", search_space=SPACE)
    with pytest.raises(ConfigError, match="no complete trial"):
        empty.plot_optimization_history()


# ------------------------------------------------------------------ optuna-dashboard


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dashboard_trials(url: str, name: str, cwd: Path) -> tuple[dict, dict]:
    """Start optuna-dashboard on ``url``; return (its study summary, its study detail) for ``name``."""
    port = _free_port()
    exe = Path(sys.executable).with_name("optuna-dashboard")
    proc = subprocess.Popen([str(exe), url, "--port", str(port), "--host", "127.0.0.1", "--quiet"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                    studies = json.load(r)["study_summaries"]
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError(f"optuna-dashboard did not start on {url}:\n{proc.stdout.read()}")
                time.sleep(0.3)
        summary = next(s for s in studies if s["study_name"] == name)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}?after=0",
                                    timeout=30) as r:
            detail = json.load(r)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard", timeout=30) as r:
            assert r.status == 200  # the page itself is served
        return summary, detail
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _check_dashboard_sees(exp: Experiment, summary: dict, detail: dict) -> None:
    assert summary["directions"] == ["maximize"]
    trials = detail["trials"]
    assert len(trials) == N_TRIALS
    states = [t["state"] for t in sorted(trials, key=lambda t: t["number"])]
    assert states.count("Complete") == N_TRIALS - 1 and states[FAILED] == "Fail"
    best = exp.best
    shown = next(t for t in trials if t["number"] == best.number)
    assert shown["values"] == [pytest.approx(best.score)]
    attrs = {a["key"]: a["value"] for a in shown["user_attrs"]}
    assert "accuracy" in attrs and "health" in attrs  # hpo-nb's record of the trial is there too
    assert {p["name"] for p in shown["params"]} >= SEARCHED


@pytest.mark.slow
def test_optuna_dashboard_opens_an_hpo_nb_sqlite_study(exp, tmp_path):
    db = exp.run_dir / "study.db"
    summary, detail = _dashboard_trials(f"sqlite:///{db.resolve()}", exp.name, tmp_path)
    _check_dashboard_sees(exp, summary, detail)
    # the relative form a user types in the project folder: optuna-dashboard sqlite:///runs/NAME/study.db
    relative = f"sqlite:///{db.relative_to(exp.run_dir.parent.parent)}"
    summary, detail = _dashboard_trials(relative, exp.name, exp.run_dir.parent.parent)
    assert len(detail["trials"]) == N_TRIALS


@pytest.mark.slow
def test_optuna_dashboard_opens_an_hpo_nb_postgresql_study(tmp_path):
    from tests.pg_server import postgres_server

    with postgres_server() as url:  # postgresql://user:password@host:port/db, as hpo-nb takes it
        exp = _make(tmp_path, storage=url, name="pg-views")
        # optuna-dashboard builds its own engine: SQLAlchemy 2.1's default PostgreSQL driver is
        # psycopg 3, while the postgres extra installs psycopg2, so the URL names the driver
        summary, detail = _dashboard_trials(url.replace("postgresql://", "postgresql+psycopg2://"), exp.name,
                                            tmp_path)
        _check_dashboard_sees(exp, summary, detail)


def test_the_apps_explorer_switches_view_and_target(exp):
    from hpo_nb.nocode import study_explorer

    box = study_explorer(exp)
    kind, target = box.children[1].children
    out = box.children[2]

    def shown() -> dict:
        (bundle,) = out.outputs
        return bundle["data"]

    assert "optimization history" in shown()["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]
    kind.value, target.value = "importance", "dead_units"
    title = shown()["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]
    assert "parameter importance" in title and "dead units" in title
    kind.value = "intermediate"
    assert target.disabled and "intermediate values" in shown()["text/plain"]
    kind.value = "contour"
    assert not target.disabled


def test_the_apps_explorer_says_why_a_view_is_empty(tmp_path):
    from hpo_nb.nocode import study_explorer

    def no_history(job) -> TrialOutcome:
        return TrialOutcome(job.spec.trial_number, "complete", accuracy=0.5, score=0.5, duration_s=1.0)

    exp = Experiment("digits", n_trials=2, executor=InMemoryExecutor(no_history), progress="none",
                     runs_dir=tmp_path, name="bare", search_space=SPACE)
    exp.run()
    box = study_explorer(exp)
    box.children[1].children[0].value = "intermediate"
    (bundle,) = box.children[2].outputs
    assert "no trial stored a per-epoch" in bundle["data"]["text/html"]


def test_importance_plot_and_heatmap_follow_one_rule(exp, tmp_path):
    """``plot("importance")`` says "not enough signal" exactly where ``exp.importance`` and its heatmap
    leave a column empty (too few trials, a constant target), and elsewhere shows the same numbers."""
    table = exp.importance()
    for target in ("accuracy", "dead_units", "duration_s", "gradient_health"):
        fig = exp.plot("importance", target)
        note = table.attrs["notes"].get(target)
        if note:  # gradient_health is 1.0 in every trial
            assert not fig.data and f"not enough signal: {note}" in fig.layout.title.text
            continue
        assert dict(zip(fig.data[0].y, fig.data[0].x)) == pytest.approx(table[target].to_dict(), abs=1e-9)
    assert "gradient_health" in table.attrs["notes"]

    tiny = Experiment("digits", n_trials=4, executor=InMemoryExecutor(_outcome), progress="none",
                      runs_dir=tmp_path, name="tiny", search_space=SPACE, pruning=False)
    tiny.run()
    notes = tiny.importance().attrs["notes"]
    heat = tiny.importance_heatmap()
    for target in ("score", "accuracy", "dead_units", "duration_s"):
        fig = tiny.plot("importance", target)
        assert not fig.data, target  # Optuna alone would rank 3 parameters from 4 trials
        assert "not enough signal: too few trials: 4 complete, needs 10" in fig.layout.title.text
        assert "Not enough signal" in fig.layout.annotations[0].text
    assert notes["accuracy"].startswith("too few trials") and all(v is None for v in heat.data[0].z[0])


QUIET_PLOTS = """
import warnings
from hpo_nb import Experiment
from hpo_nb.executors import InMemoryExecutor
from tests.test_optuna_views import SPACE, _outcome
for n in (1, 3):
    exp = Experiment("digits", n_trials=n, executor=InMemoryExecutor(_outcome), progress="none",
                     runs_dir={runs!r}, name=f"q{{n}}", search_space=SPACE, pruning=False)
    exp.run()
    for kind in ("history", "importance", "parallel", "slice", "contour", "intermediate"):
        print(n, kind, "|", exp.plot(kind).layout.title.text)
    print(n, "pair |", exp.plot_contour(params=["dropout", "learning_rate"]).layout.title.text)
warnings.warn("a warning of the caller's own still shows")
"""


def test_optunas_plots_print_nothing_and_say_in_the_figure_what_optuna_would_log(tmp_path):
    """A 1-trial and a 3-trial study, every plot, in a fresh process with Python's default warning
    filters: stderr has only the caller's own warning (before: Optuna's "Param ... unique value
    length is less than 2." lines), and the contour's title says why its panels are empty."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-W", "default", "-c", QUIET_PLOTS.format(runs=str(tmp_path))],
                          cwd=root, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 0, proc.stderr
    # Python 3.13 also echoes the source line of code run with -c; that line is the caller's too
    lines = [line for line in proc.stderr.splitlines()
             if line.strip() and line.strip() != 'warnings.warn("a warning of the caller\'s own still shows")']
    assert len(lines) == 1 and "UserWarning: a warning of the caller's own still shows" in lines[0], proc.stderr
    titles = dict((line.split(" |")[0], line.split("| ", 1)[1]) for line in proc.stdout.splitlines())
    assert ("dropout, learning_rate and batch_size have taken a single value in the 1 complete trial so far: "
            "no contour across them yet") in titles["1 contour"]
    assert "dropout has taken a single value in the 1 complete trial" in titles["1 pair"]
    assert "<sup>" not in titles["3 contour"] and "<sup>" not in titles["3 slice"]
    assert "not enough signal: too few trials: 3 complete, needs 10" in titles["3 importance"]


def test_a_contour_of_one_parameter_is_a_clear_error(exp):
    with pytest.raises(ConfigError, match="contour plot needs two or more parameters"):
        exp.plot_contour(params=["dropout"])
