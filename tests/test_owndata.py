"""Your own data (issue 15): folders, CSV, DataFrames and files through the constructors, the CLI's
one-line errors, the chance levels a search must beat, and the messages after every trial failed.
Nothing here trains (tests/test_owndata_train.py does)."""

from __future__ import annotations

import gzip
import io
import struct
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from hpo_nb import Experiment, datasets
from hpo_nb.baseline import MIN_VALIDATION, all_failed, baseline_of, not_beaten, small_validation
from hpo_nb.errors import ConfigError
from hpo_nb.objective import balanced_accuracy, best_epoch
from hpo_nb.views import viewmodel as vm

from .owndata_support import images, png_folder, pixel_csv, sentences, text_csv, text_folder


@pytest.fixture(autouse=True)
def _quiet_notes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


# ------------------------------------------------------------------------- folders


def test_a_folder_of_pngs_per_class_gives_scaled_images_and_the_folder_names(tmp_path):
    ds = datasets.from_directory(png_folder(tmp_path / "shapes", n=6))
    assert ds.modality == "image" and ds.class_names == ["plain", "square"] and ds.num_classes == 2
    assert ds.input_shape == (8, 8, 1) and len(ds.x) == 12 and ds.name.startswith("shapes-")
    assert ds.x.dtype == np.float32 and 0 <= ds.x.min() and ds.x.max() <= 1 and ds.scale == pytest.approx(1 / 255)
    x, _ = images(6)
    assert np.allclose(ds.raw_pixels(ds.x)[ds.y == 1].max(), x[6:].max())  # pixels as stored, not resampled
    assert datasets.from_directory(tmp_path / "shapes", image_size=4, color_mode="rgb").input_shape == (4, 4, 3)
    picked = datasets.from_directory(tmp_path / "shapes", class_names=["square", "plain"])  # index order as given
    assert picked.class_names == ["square", "plain"] and picked.x[picked.y == 0].mean() > picked.x[picked.y == 1].mean()


def test_images_of_other_sizes_are_resized_to_the_most_common_one_and_said_so(tmp_path):
    from PIL import Image

    root = png_folder(tmp_path / "mixed", n=6)
    Image.fromarray(np.zeros((20, 12), np.uint8)).save(root / "plain" / "big.gif")
    with pytest.warns(UserWarning, match="1 images of other sizes resized to 8x8"):
        ds = datasets.from_directory(root)
    assert ds.input_shape == (8, 8, 1) and len(ds.x) == 13


@pytest.mark.parametrize("layout, words", [
    ({}, "has 0 class folder"),
    ({"a/1.png": "png"}, "has 1 class folder"),
    ({"a/1.png": "png", "b/notes.md": "x"}, r"holds no images .*only \['.md'\]"),
    ({"a/1.png": "png", "b/1.txt": "words"}, "both images and .txt files"),
    ({"a/1.png": "png", "b/2.png": b"not a png"}, r"2.png is not a readable image"),
])
def test_folders_that_cannot_be_read_say_why(tmp_path, layout, words):
    from PIL import Image

    for rel, content in layout.items():
        path = tmp_path / "d" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "png":
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(path)
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    (tmp_path / "d").mkdir(exist_ok=True)
    with pytest.raises(ConfigError, match=words):
        datasets.from_directory(tmp_path / "d")


def test_a_folder_of_txt_files_per_class_as_the_imdb_archive_ships(tmp_path):
    root = text_folder(tmp_path / "train", n=6)
    (root / "unsup").mkdir()
    for i in range(3):
        (root / "unsup" / f"{i}_0.txt").write_text("no label")
    (root / "urls_pos.txt").write_text("http://example.org")  # loose files are not samples
    with pytest.warns(UserWarning, match="folder unsup left out"):
        ds = datasets.from_directory(root)
    assert ds.modality == "text" and ds.class_names == ["neg", "pos"] and len(ds.x) == 12
    assert datasets.from_directory(root, class_names=["pos", "neg", "unsup"]).class_names == ["pos", "neg", "unsup"]
    assert ds.x[ds.y == 1][0].startswith("the film was ")
    (root / "neg" / "bad.txt").write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"bad.txt is not valid utf-8 .*encoding="):
        datasets.from_directory(root, class_names=["neg", "pos"])


# ------------------------------------------------------------------------- tables


def test_a_csv_of_pixel_rows_gives_square_images_with_the_label_names(tmp_path):
    ds = datasets.from_csv(pixel_csv(tmp_path / "fashion.csv", n=6))
    assert ds.modality == "image" and ds.input_shape == (8, 8, 1) and ds.class_names == ["plain", "square"]
    assert ds.scale == pytest.approx(1 / 255) and ds.name.startswith("fashion-")
    assert datasets.from_csv(tmp_path / "fashion.csv", image_shape=(8, 8)).fingerprint == ds.fingerprint
    with pytest.raises(ConfigError, match=r"image_shape \(4, 4\) holds 16 values but rows have 64"):
        datasets.from_csv(tmp_path / "fashion.csv", image_shape=(4, 4))


def test_a_csv_with_a_text_column_gives_raw_text(tmp_path):
    ds = datasets.from_csv(text_csv(tmp_path / "reviews.csv", n=6), text="review")
    assert ds.modality == "text" and ds.class_names == ["neg", "pos"] and ds.is_raw_text and len(ds.x) == 12
    with pytest.raises(ConfigError, match=r"no text column 'text'; the columns are 'id', 'review', 'sentiment'"):
        datasets.from_csv(tmp_path / "reviews.csv", text="text")
    with pytest.raises(ConfigError, match=r"columns \['review'\] are not numeric; for text pass text="):
        datasets.from_csv(tmp_path / "reviews.csv")


def test_table_mistakes_are_named_with_the_fix(tmp_path):
    df = pd.DataFrame({"a": range(12), "b": range(12), "c": range(12)})
    with pytest.raises(ConfigError, match=r"which column holds the labels\? none is .*label= .*'a', 'b', 'c'"):
        datasets.from_dataframe(df)
    with pytest.raises(ConfigError, match=r"2 sample columns do not make a square image; pass image_shape="):
        datasets.from_dataframe(df, label="a")
    df["text"] = ["good film"] * 11 + [None]
    with pytest.raises(ConfigError, match=r"column 'text' has 1 empty cells \(the first in row 11\)"):
        datasets.from_dataframe(df, label="a", text="text")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbflabel,p0,p1,p2,p3\n" + b"0,1,2,3,4\n1,5,6,7,8\n" * 6)
    assert datasets.from_csv(bom, test_fraction=0).class_names is None  # 'label' found: the BOM is not in it


def test_from_dataframe_takes_a_test_frame_and_from_arrays_any_array_like():
    x, y = images(8)
    df = pd.DataFrame(x.reshape(16, -1))
    df["target"] = y
    ds = datasets.from_dataframe(df.iloc[::2], test=df.iloc[1::2])
    assert ds.has_test_split and len(ds.x_test) == 8 and ds.input_shape == (8, 8, 1)

    class ArrayLike:  # e.g. a tensor of another framework
        def __array__(self, dtype=None, copy=None):
            return x

    assert datasets.from_arrays(ArrayLike(), pd.Series(y)).input_shape == (8, 8, 1)
    assert datasets.from_arrays(x.tolist(), list(y)).input_shape == (8, 8, 1)


# ------------------------------------------------------------------------- any path (the CLI's --data)


def _idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()


def test_from_path_opens_each_kind_by_what_it_is(tmp_path):
    x, y = images(8)
    np.savez(tmp_path / "split.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    assert datasets.from_path(tmp_path / "split.npz").has_test_split
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(x)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx(y.astype(np.uint8)))
    paired = datasets.from_path(f"{tmp_path / 'train-images-idx3-ubyte.gz'},{tmp_path / 'train-labels-idx1-ubyte'}")
    assert paired.input_shape == (8, 8, 1)
    texts, labels = sentences(6)
    (tmp_path / "lines.txt").write_text("".join(f"{a}\t{b}\n" for a, b in zip(labels, texts)))
    assert datasets.from_path(tmp_path / "lines.txt").class_names == ["neg", "pos"]
    with pytest.raises(ConfigError, match=r"text= \(CLI: --text-column\) does not apply to an .npz file"):
        datasets.from_path(tmp_path / "split.npz", text="review")
    with pytest.raises(ConfigError, match="does not exist"):
        datasets.from_path(tmp_path / "nope.csv")


# ------------------------------------------------------------------------- text files


def test_a_header_line_is_detected_and_dropped_once_said(tmp_path):
    texts, labels = sentences(6)
    lines = ["sentiment\treview"] + [f"{a}\t{b}" for a, b in zip(labels, texts)]
    with pytest.warns(UserWarning, match=r"first line \('sentiment', 'review'\) read as a header"):
        ds = datasets.from_text_lines(lines, sep="\t")
    assert ds.class_names == ["neg", "pos"] and len(ds.x) == 12
    with pytest.raises(ConfigError, match=r"'sentiment' \(1 sample\)"):
        datasets.from_text_lines(lines, sep="\t", header=False)


def test_a_directory_of_one_file_per_class_and_utf16_files(tmp_path):
    folder = tmp_path / "polarity"
    folder.mkdir()
    texts, _ = sentences(6)
    (folder / "rt-polarity.pos").write_text("\n".join(texts[:6]), encoding="utf-16")  # BOM: detected
    (folder / "rt-polarity.neg").write_text("\n".join(texts[6:]), encoding="utf-8")
    ds = datasets.from_text_lines(folder)
    assert ds.class_names == ["neg", "pos"] and len(ds.x) == 12 and ds.x[ds.y == 1][0] == texts[0]
    (folder / "rt-polarity.neg").write_bytes("pas mal, tr\u00e8s bien\n".encode("cp1252") * 6)
    with pytest.raises(ConfigError, match=r"rt-polarity.neg is not valid utf-8 .*looks like .*encoding="):
        datasets.from_text_lines(folder)
    assert len(datasets.from_text_lines(io.StringIO("a\tgood\nb\tbad\n" * 3), sep="\t").x) == 6


# ------------------------------------------------------------------------- chance levels and messages


def test_chance_levels_and_their_warnings():
    base = baseline_of([0] * 30 + [1] * 10, 2, ["neg", "pos"])
    assert base.majority_rate == 0.75 and base.majority_class == "neg" and base.chance("balanced_accuracy") == 0.5
    assert "does not beat the majority-class rate 0.7500 (always answering 'neg')" in not_beaten(0.75, base, "accuracy")
    assert "metric='balanced_accuracy'" in not_beaten(0.7, base, "accuracy")
    assert not_beaten(0.8, base, "accuracy") is None and not_beaten(0.6, base, "balanced_accuracy") is None
    # Keras reports accuracy as float32: 11/12 comes back as 0.91666668..., 2e-8 above the rate
    eleven = baseline_of(np.array([0] * 11 + [1]), 2)
    assert not_beaten(float(np.float32(11 / 12)), eleven, "accuracy") is not None
    assert not_beaten(float(np.float32(11 / 12)) + 1 / 48, eleven, "accuracy") is None  # one sample more
    assert small_validation(MIN_VALIDATION) is None
    assert "only 24 samples: one sample moves accuracy by 4.2 points" in small_validation(24)
    assert "±10 points" in small_validation(24) and "400 (±2.5)" in small_validation(24)
    assert all_failed([(3, "ValueError: x"), (1, "RuntimeError: boom")]) == \
        "all 2 trials failed; the first error (trial 1): RuntimeError: boom"


def test_balanced_accuracy_is_the_mean_recall_and_the_best_epoch_follows_the_metric():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    assert balanced_accuracy(y_true, y_pred) == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert balanced_accuracy([0] * 9 + [1], [0] * 10) == 0.5  # always the majority class: 1/K
    history = {"val_accuracy": [0.9, 0.8], "val_balanced_accuracy": [0.5, 0.7]}
    assert best_epoch(history, "balanced_accuracy") == (0.8, 0.7) and best_epoch(history, "accuracy") == (0.9, 0.9)


def test_the_majority_rate_sits_beside_the_best_accuracy():
    from hpo_nb.progress import ProgressHub

    snap = ProgressHub(4, "simple", 1).snapshot()
    from hpo_nb.views import dashboard_html

    best = vm.tiles(snap, 0.625)[1]
    assert (best.label, best.value, best.note) == ("Best accuracy", "–", "majority class 62.5 %")
    assert "Best accuracy: – (majority class 62.5 %)" in vm.summary_text(snap, "t", None, 0.625)
    assert "majority class 62.5 %" in dashboard_html.summary_html(snap, "t", None, majority_rate=0.625)
    assert "Best score (balanced accuracy + health)" in [
        t.label for t in vm.tiles(ProgressHub(4, "health", 1).snapshot(), None, "balanced_accuracy")]
    assert vm.baseline_line(0.625, "neg", 40).startswith("majority-class rate 0.6250 on 40 validation samples")


def test_experiment_checks_the_metric_and_warns_when_validation_is_too_small(runs_dir):
    x, y = images(40)
    ds = datasets.from_arrays(x[:56], y[:56])  # 40 plain, 16 square: imbalanced
    with pytest.raises(ConfigError, match="metric must be one of 'accuracy', 'balanced_accuracy'"):
        Experiment(ds, metric="f1", runs_dir=runs_dir, progress="none")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        exp = Experiment(ds, name="small", runs_dir=runs_dir, progress="none")
    assert any("the validation split has only 9 samples" in str(w.message) for w in seen)
    assert exp.baseline.majority_rate == pytest.approx(6 / 9) and exp.baseline.majority_class == "0"
    frame = exp.results
    assert list(frame.columns)[list(frame.columns).index("accuracy") + 1] == "majority_rate"
    assert frame.attrs["majority_rate"] == pytest.approx(6 / 9)
    other = Experiment(ds, name="small", metric="balanced_accuracy", runs_dir=runs_dir, progress="none")
    with pytest.raises(ConfigError, match=r"metric='accuracy' \(now 'balanced_accuracy'\)"):
        other.start()


def test_after_every_trial_failed_best_best_model_and_the_views_quote_the_first_error(runs_dir, monkeypatch):
    from hpo_nb import training

    def broken(spec, *args, **kwargs):
        raise RuntimeError(f"boom in trial {spec.trial_number}")

    monkeypatch.setattr(training, "_train", broken)
    x, y = images(60)
    exp = Experiment(datasets.from_arrays(x, y), name="broken", n_trials=2, max_epochs=1, runs_dir=runs_dir,
                     progress="none", search_space={"conv_blocks": 1, "filters": 8})
    exp.run()
    message = r"all 2 trials failed; the first error \(trial 0\): RuntimeError: boom in trial 0"
    with pytest.raises(ConfigError, match=message):
        exp.best
    with pytest.raises(ConfigError, match=message):
        exp.best_model()
    snap = exp.hub.snapshot()
    assert any(n.startswith("all 2 trials failed; the first error (trial 0)") for n in snap.notices)
    assert "! all 2 trials failed" in vm.summary_text(snap)


# ------------------------------------------------------------------------- the CLI's input errors

HPO = [sys.executable, "-m", "hpo_nb"]


@pytest.mark.parametrize("args, words", [
    (["--search-space", "[1,2]"], "--search-space must be a JSON object"),
    (["--search-space", '{"filters": {"range": 5}}'], "\"range\" takes two numbers [low, high]"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--trials", "many"], "argument --trials: invalid int value: 'many'"),
    (["--data", "nope.csv"], "nope.csv does not exist"),
    (["--data", "x.csv", "--dataset", "digits"], "not both"),
    (["--label-column", "y"], "--label-column goes with --data PATH"),
    (["--runs-dir", "/proc/none"], "/proc/none: No such file or directory"),
    (["--data", "x.csv", "--image-shape", "28by28"], "--image-shape must look like 28x28"),
    (["--data", "x.csv", "--label-column", "nope"], "no column 'nope'; the columns are 'label'"),
    (["--data", "x.csv", "--image-size", "32"], "--image-size does not apply to a CSV file"),
])
def test_every_cli_input_error_is_one_line_and_exit_code_2(tmp_path, args, words):
    pixel_csv(tmp_path / "x.csv", n=4)
    proc = subprocess.run([*HPO, "run", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("hpo-nb: error: ") and words in lines[0], lines[0]


def test_a_best_trial_that_does_not_beat_the_majority_class_is_announced(runs_dir, monkeypatch):
    from hpo_nb import training
    from hpo_nb.spec import TrialOutcome

    def constant(spec, *args, **kwargs):  # what a model that always answers the majority class scores
        return TrialOutcome(spec.trial_number, "complete", accuracy=6 / 9, score=6 / 9)

    monkeypatch.setattr(training, "_train", constant)
    x, y = images(40)
    exp = Experiment(datasets.from_arrays(x[:56], y[:56]), name="flat", n_trials=1, max_epochs=1,
                     runs_dir=runs_dir, progress="none", search_space={"conv_blocks": 1, "filters": 8})
    exp.run()
    notices = exp.hub.snapshot().notices
    assert notices[0].startswith("the validation split has only 9 samples")
    assert any("validation accuracy 0.6667 does not beat the majority-class rate 0.6667 (always answering '0')"
               in n for n in notices), notices


# ------------------------------------------------------------------------- the real files in shared/data


def test_real_files_through_from_path(shared_data, tmp_path):
    mnist = datasets.from_path(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")  # labels file found by name
    assert len(mnist.x) == 10_000 and mnist.input_shape == (28, 28, 1) and mnist.num_classes == 10
    x = datasets.read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")[:500]
    y = datasets.read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")[:500]
    frame = pd.DataFrame(x.reshape(500, -1), columns=[f"pixel{i}" for i in range(784)])
    frame.insert(0, "label", y)
    frame.to_csv(tmp_path / "mnist.csv", index=False)
    assert datasets.from_path(tmp_path / "mnist.csv").fingerprint == datasets.from_arrays(x, y).fingerprint
    sms = datasets.from_path(shared_data / "sms_spam" / "SMSSpamCollection")  # label<TAB>text lines
    assert len(sms.x) == 5574 and sms.class_names == ["ham", "spam"]


def test_the_sentence_polarity_folder_of_one_file_per_class(shared_data, tmp_path):
    import zipfile

    with zipfile.ZipFile(shared_data / "sentence_polarity" / "sentence_polarity.zip") as zf:
        zf.extractall(tmp_path)
    with pytest.warns(UserWarning, match="README.txt in .* skipped"):
        ds = datasets.from_text_lines(tmp_path / "sentence_polarity")
    assert ds.class_names == ["neg", "pos"] and len(ds.x) == 10_662


def test_the_metric_travels_to_runpod_workers_and_unknown_ones_are_refused():
    from hpo_nb.executors.runpod import wire
    from hpo_nb.spec import TrialSpec

    spec = TrialSpec(trial_number=1, dataset="digits", params={"filters": 8}, max_epochs=2, metric="balanced_accuracy")
    assert wire.decode_input(wire.encode_spec(spec)).metric == "balanced_accuracy"
    assert "metric" in wire.validation_problem({**spec.to_dict(), "metric": "f1"})
