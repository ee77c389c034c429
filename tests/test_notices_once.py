"""Each warning about a search reaches the user once per surface: a small validation split, the
best trial not beating the majority class. Python: the ``UserWarning`` (or the console's "!"
line, not both); ``hpo-nb run``: one line; run.log keeps it either way. Trials are replaced
(InMemoryExecutor): what is shown is under test, not training."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import pytest

import hpo_nb
from hpo_nb import Experiment, datasets
from hpo_nb.executors import InMemoryExecutor
from hpo_nb.spec import TrialOutcome

from .owndata_support import images, pixel_csv

SMALL = "the validation split has only 9 samples"
WEAK = "does not beat the majority-class rate"


def constant(job):  # what always answering the majority class scores on a 6-of-9 split
    return TrialOutcome(job.spec.trial_number, "complete", accuracy=6 / 9, score=6 / 9, duration_s=1.0, epochs_run=1)


def small_experiment(runs_dir, progress):
    x, y = images(40)
    ds = datasets.from_arrays(x[:56], y[:56])  # 40 plain, 16 square: 9 validation samples
    return Experiment(ds, name="small", n_trials=1, max_epochs=1, runs_dir=runs_dir, progress=progress,
                      executor=InMemoryExecutor(constant), search_space={"conv_blocks": 1, "filters": 8})


def test_python_console_shows_the_small_validation_warning_once_and_run_log_keeps_it(runs_dir, capsys):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        exp = small_experiment(runs_dir, "console")
        exp.run()
    out, err = capsys.readouterr()
    shown = (out + err).count(SMALL) + sum(SMALL in str(w.message) for w in seen)
    assert shown == 1, (out, err, [str(w.message) for w in seen])
    assert (exp.run_dir / "run.log").read_text().count(SMALL) == 1


def test_progress_none_raises_the_majority_class_verdict_as_one_user_warning(runs_dir):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        exp = small_experiment(runs_dir, "none")
        exp.run()
        exp.wait()  # again: nothing new
    weak = [str(w.message) for w in seen if WEAK in str(w.message)]
    assert len(weak) == 1 and weak[0].startswith("hpo-nb: the best trial's validation accuracy 0.6667"), weak
    assert "metric='balanced_accuracy'" in weak[0]  # Python's spelling in Python
    assert sum(SMALL in str(w.message) for w in seen) == 1
    assert (exp.run_dir / "run.log").read_text().count(WEAK) == 1


@pytest.mark.slow
def test_hpo_nb_run_prints_each_warning_once(tmp_path):
    """A process of its own: without pytest's log handlers, a record logged before run.log is
    attached would reach stderr through logging's last-resort handler."""
    pixel_csv(tmp_path / "x.csv", n=28)  # 56 rows: 9 validation samples
    script = textwrap.dedent(f"""
        from hpo_nb import cli, experiment
        from hpo_nb.executors import InMemoryExecutor
        from hpo_nb.spec import TrialOutcome

        class Weak(experiment.Experiment):
            def __init__(self, **kwargs):
                run = InMemoryExecutor(lambda job: TrialOutcome(job.spec.trial_number, "complete", accuracy=0.5,
                                                                score=0.5, duration_s=1.0, epochs_run=1))
                super().__init__(**{{**kwargs, "executor": run}})

        experiment.Experiment = Weak
        raise SystemExit(cli.main(["run", "--data", "x.csv", "--trials", "1", "--name", "small", "--no-evaluate",
                                   "--search-space", '{{"conv_blocks": 1, "filters": 8}}']))
    """)
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(hpo_nb.__file__))}  # this checkout's hpo_nb
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    both = proc.stdout + proc.stderr
    assert both.count("the validation split has only") == 1, both
    assert both.count(WEAK) == 1 and "Try --metric balanced_accuracy" in both, both
    assert "metric='balanced_accuracy'" not in both
    log = next((tmp_path / "runs").glob("*/run.log")).read_text()
    assert log.count("the validation split has only") == 1
