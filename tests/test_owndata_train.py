"""Your own data trained end to end (issue 15): a folder of PNGs, a folder of .txt files, a CSV of
pixel rows and a CSV with a text column, each through the Python API and through
``hpo-nb run --data``, to above chance; and ``metric="balanced_accuracy"`` scored per epoch."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import optuna
import pytest

from hpo_nb import Experiment, datasets
from hpo_nb.objective import balanced_accuracy

from .owndata_support import FAST_CNN, FAST_LSTM, images, png_folder, pixel_csv, text_csv, text_folder

KINDS = {
    "png-folder": (lambda tmp: png_folder(tmp / "shapes"), {}, FAST_CNN),
    "txt-folder": (lambda tmp: text_folder(tmp / "reviews"), {}, FAST_LSTM),
    "pixel-csv": (lambda tmp: pixel_csv(tmp / "pixels.csv"), {}, FAST_CNN),
    "text-csv": (lambda tmp: text_csv(tmp / "reviews.csv"), {"text": "review", "label": "sentiment"}, FAST_LSTM),
}
CLI_FLAGS = {"text": "--text-column", "label": "--label-column"}


def _space_json(space: dict) -> str:
    return json.dumps({k: {"range": list(v)} if isinstance(v, tuple) else v for k, v in space.items()})


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_own_data_trains_above_chance_through_the_python_api(kind, tmp_path):
    make, options, space = KINDS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the small validation split is announced
        ds = datasets.from_path(make(tmp_path), **options)
        exp = Experiment(ds, n_trials=2, max_epochs=2, runs_dir=tmp_path / "runs", progress="none",
                         search_space=space)
    exp.run()
    assert exp.best.accuracy > exp.baseline.majority_rate == 0.5  # balanced classes: chance is 0.5
    assert exp.results["majority_rate"].eq(0.5).all()


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_own_data_trains_above_chance_through_hpo_nb_run_data(kind, tmp_path):
    make, options, space = KINDS[kind]
    path = make(tmp_path)
    flags = [x for k, v in options.items() for x in (CLI_FLAGS[k], v)]
    proc = subprocess.run(
        [sys.executable, "-m", "hpo_nb", "run", "--data", str(path), *flags, "--name", "own", "--trials", "2",
         "--max-epochs", "2", "--search-space", _space_json(space), "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "majority-class rate 0.5000 on 12 validation samples" in proc.stdout
    study = optuna.load_study(study_name="own", storage=f"sqlite:///{tmp_path / 'runs' / 'own' / 'study.db'}")
    assert study.best_value > 0.5


@pytest.mark.slow
def test_balanced_accuracy_is_the_objective_per_epoch_and_matches_the_saved_model(tmp_path):
    x, y = images(60)
    keep = np.r_[0:60, 60:80]  # 60 plain, 20 square: accuracy 0.75 for always "plain"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        exp = Experiment(datasets.from_arrays(x[keep], y[keep]), metric="balanced_accuracy", n_trials=1,
                         max_epochs=2, runs_dir=tmp_path / "runs", progress="none", search_space=FAST_CNN)
    exp.run()
    best = exp.best
    per_epoch = best.history["val_balanced_accuracy"]
    assert len(per_epoch) == 2 and best.score == pytest.approx(max(per_epoch))
    assert exp.results.loc[0, "balanced_accuracy"] == pytest.approx(best.score)
    _, _, x_val, y_val = exp.dataset.split(exp.validation_fraction, exp.seed, 1.0, exp.test_fraction)
    predicted = exp.best_model().predict(x_val, verbose=0).argmax(axis=-1)
    assert balanced_accuracy(y_val, predicted) == pytest.approx(best.score)  # the kept epoch is the scored one
