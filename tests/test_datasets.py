import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hpo_nb import datasets
from hpo_nb.errors import ConfigError, DatasetUnavailableError


def test_digits_is_the_offline_default():
    ds = datasets.load("digits")
    assert ds.modality == "image" and ds.input_shape == (8, 8, 1) and ds.num_classes == 10
    assert len(ds.x) == 1797 and ds.x.dtype == np.float32 and 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    for name in ("mnist", "fashion_mnist", "cifar10", "cifar100", "imdb", "reuters", "gtsrb"):
        meta = datasets.info(name)
        assert meta.needs_network and meta.num_classes >= 2


def test_split_is_seeded_stratified_and_sample_fraction_keeps_validation():
    ds = datasets.load("digits")
    a = ds.split(0.2, seed=3)
    b = ds.split(0.2, seed=3, sample_fraction=0.25)
    assert np.array_equal(a[3], b[3]) and np.array_equal(a[2], b[2])  # same validation samples
    assert abs(len(b[0]) - 0.25 * len(a[0])) <= 10
    counts = np.bincount(b[1], minlength=10) / len(b[1])
    assert np.all(np.abs(counts - 0.1) < 0.03)  # stratified
    c = ds.split(0.2, seed=4)
    assert not np.array_equal(a[3], c[3])


def test_network_dataset_fails_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(datasets.builtin, "_network_available", lambda *a, **k: False)
    datasets._load_cached.cache_clear()
    with pytest.raises(DatasetUnavailableError) as err:
        datasets.load("mnist")
    assert "digits" in str(err.value) and "from_arrays" in str(err.value)


def test_unknown_dataset_names_the_registered_ones():
    with pytest.raises(ConfigError, match="unknown dataset 'nope'.*digits"):
        datasets.load("nope")


def test_idx_loader_reads_the_real_mnist_test_split(shared_data):
    ds = datasets.from_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz",
                           shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz", name="mnist-test")
    assert len(ds.x) == 10_000 and ds.num_classes == 10 and ds.input_shape == (28, 28, 1)
    assert sorted(np.unique(ds.y)) == list(range(10))


def test_idx_plain_and_gzip_agree(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = b"\x00\x00\x08\x03" + np.array([2, 3, 4], dtype=">i4").tobytes() + data.tobytes()
    (tmp_path / "a.idx").write_bytes(raw)
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(raw))
    assert np.array_equal(datasets.read_idx(tmp_path / "a.idx"), data)
    assert np.array_equal(datasets.read_idx(tmp_path / "a.idx.gz"), data)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ConfigError, match="not an IDX file"):
        datasets.read_idx(tmp_path / "bad")


def test_from_arrays_infers_modality():
    rng = np.random.default_rng(0)
    assert datasets.from_arrays(rng.random((20, 8, 8)), np.arange(20) % 2).modality == "image"
    assert datasets.from_arrays(rng.random((20, 64)), np.arange(20) % 2).input_shape == (8, 8, 1)
    assert datasets.from_arrays(rng.integers(1, 50, (20, 10)), np.arange(20) % 2).modality == "text"
    text = datasets.from_arrays(["good film", "bad film"] * 5, ["pos", "neg"] * 5)
    assert text.modality == "text" and text.class_names == ["neg", "pos"]


@pytest.mark.parametrize("x, y, words", [
    (np.zeros((10, 8, 8)), np.zeros(9), "same length"),
    (np.zeros((0, 8, 8)), np.zeros(0), "empty"),
    (np.zeros((10, 7)), np.arange(10) % 2, "modality"),
    (np.zeros((10, 8, 8)), np.zeros(10), "2 or more"),
])
def test_from_arrays_rejects_bad_input(x, y, words):
    with pytest.raises(ConfigError, match=words):
        datasets.from_arrays(x, y)


def test_text_lines_from_label_files_inside_a_zip(shared_data):
    archive = shared_data / "sentence_polarity" / "sentence_polarity.zip"
    ds = datasets.from_text_lines({
        "neg": zipfile.Path(archive, "sentence_polarity/rt-polarity.neg"),
        "pos": zipfile.Path(archive, "sentence_polarity/rt-polarity.pos"),
    }, name="polarity")
    assert len(ds.x) == 10_662 and ds.class_names == ["neg", "pos"] and ds.modality == "text"
    x_train, y_train, x_val, y_val = ds.split(0.2, seed=0, sample_fraction=0.1)
    assert x_train.dtype == np.int32 and x_train.shape[1] == ds.sequence_length
    assert x_train.max() < ds.vocabulary_size


def test_text_lines_from_one_tab_separated_file(shared_data):
    ds = datasets.from_text_lines(shared_data / "sms_spam" / "SMSSpamCollection", sep="\t", name="sms")
    assert len(ds.x) == 5574 and ds.class_names == ["ham", "spam"]
    assert int((ds.y == 1).sum()) == 747


def test_gtsrb_download_checks_the_checksum_and_caches(tmp_path):
    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls in (0, 1, 2):
            for i in range(3):
                img = io.BytesIO()
                Image.new("RGB", (40, 30), (cls * 80, i * 60, 10)).save(img, format="PPM")
                zf.writestr(f"GTSRB/Training/{cls:05d}/{i:05d}_00000.ppm", img.getvalue())
    src = tmp_path / "src.zip"
    src.write_bytes(buf.getvalue())
    md5 = hashlib.md5(buf.getvalue()).hexdigest()
    dest = tmp_path / "cache" / "gtsrb.zip"
    with pytest.raises(DatasetUnavailableError, match="checksum mismatch"):
        datasets.download(src.as_uri(), dest, "0" * 32)
    assert not dest.exists()
    assert datasets.download(src.as_uri(), dest, md5) == dest
    src.unlink()  # cached now: no second download
    assert datasets.download(src.as_uri(), dest, md5) == dest
    ds = datasets.read_gtsrb_zip(dest, size=16)
    assert ds.input_shape == (16, 16, 3) and ds.num_classes == 3 and len(ds.x) == 9


def test_test_split_is_held_out_first_stratified_and_the_same_for_every_seed():
    ds = datasets.load("digits")
    assert ds.scale == 1 / 16 and not ds.has_test_split and ds.resolve_test_fraction() == 0.2
    a, b = ds.splits(0.2, seed=3), ds.splits(0.2, seed=4, sample_fraction=0.5)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_test, b.y_test)  # data-fixed, not seeded per run
    assert len(a.y_test) == 359 and np.all(np.abs(np.bincount(a.y_test) / 359 - 0.1) < 0.02)
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == 1797
    rows = lambda x: {r.tobytes() for r in x}
    assert not rows(a.x_test) & rows(a.x_val) and not rows(a.x_test) & rows(a.x_train)
    assert all(np.array_equal(u, v) for u, v in zip(ds.split(0.2, seed=3), a[:4]))  # the 4-tuple callers get
    raw = ds.splits(0.2, seed=3, raw=True)
    assert raw.x_test.max() == 16.0 and np.allclose(raw.x_test * ds.scale, a.x_test)
    none = ds.splits(0.2, seed=3, test_fraction=0)
    assert len(none.y_test) == 0 and len(none.y_train) + len(none.y_val) == 1797


def test_keras_datasets_keep_their_official_test_split_apart(monkeypatch, tmp_path):
    import keras

    rng = np.random.default_rng(0)
    train = (rng.integers(0, 256, (60, 28, 28), dtype=np.uint8), np.arange(60) % 10)
    test = (rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20) % 10)
    monkeypatch.setattr(datasets.builtin, "_network_available", lambda *a, **k: True)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda **kw: (train, test))
    ds = datasets._keras_loader("mnist", "image", "mnist.npz")()
    assert len(ds.x) == 60 and ds.has_test_split and ds.scale == 1 / 255 and ds.resolve_test_fraction() == 0.0
    s = ds.splits(0.2, seed=0)
    assert len(s.y_train) + len(s.y_val) == 60 and np.array_equal(s.y_test, test[1])
    assert np.allclose(ds.splits(0.2, 0, raw=True).x_test[..., 0], test[0], atol=1e-3)
    assert np.array_equal(ds.splits(0.2, 0, test_fraction=0.2).y_test, test[1])  # a spec's default: ignored
    with pytest.raises(ConfigError, match="own test split"):
        ds.resolve_test_fraction(0.1, strict=True)  # what Experiment(test_fraction=) checks


def test_explicit_test_split_uses_the_training_labels_and_scaling():
    x = np.random.default_rng(0).integers(0, 17, (30, 8, 8))
    ds = datasets.from_arrays(x, ["cat", "dog", "eel"] * 10, test=(x[:6], ["eel", "cat"] * 3), scale=1 / 16)
    assert ds.class_names == ["cat", "dog", "eel"] and list(ds.y_test) == [2, 0] * 3
    assert ds.scale == 1 / 16 and np.allclose(ds.x_test, ds.x[:6])
    again = datasets.from_arrays(x, ["cat", "dog", "eel"] * 10).with_test(x[:4], ["dog"] * 4)
    assert list(again.y_test) == [1] * 4 and again.has_test_split
    with pytest.raises(ConfigError, match="not classes"):
        datasets.from_arrays(x, ["cat", "dog", "eel"] * 10).with_test(x[:2], ["yak", "cat"])


def test_text_test_split_is_vectorized_with_the_training_vocabulary():
    texts = [f"word{i % 7} common filler{i % 3}" for i in range(100)]
    ds = datasets.from_arrays(texts, [i % 2 for i in range(100)], modality="text", name="t", sequence_length=5)
    s = ds.splits(0.2, 0)
    assert s.x_test.dtype == np.int32 and s.x_test.shape == (20, 5)
    vocab = ds.vocabulary(0.2, 0)
    assert vocab[:2] == ["", "[UNK]"] and "common" in vocab
    assert ds.splits(0.2, 0, raw=True).x_test.dtype == object


# ------------------------------------------------------------------ identity (issue 15, item 3)


def test_default_names_follow_the_data_so_different_datasets_never_share_one():
    rng = np.random.default_rng(1)
    a = datasets.from_arrays(rng.random((30, 8, 8)), np.arange(30) % 3)
    b = datasets.from_arrays(rng.random((40, 12, 12)), np.arange(40) % 5)
    again = datasets.from_arrays(a.x[..., 0].copy(), np.arange(30) % 3)
    assert a.name.startswith("arrays-") and a.name != b.name and again.name == a.name
    assert a.fingerprint == again.fingerprint != b.fingerprint
    assert datasets.attach(a) == a.name and datasets.attach(again) == a.name  # the same data: fine
    clash = datasets.from_arrays(rng.random((30, 8, 8)), np.arange(30) % 3, name=a.name)
    with pytest.raises(ConfigError, match="another dataset named .* different data"):
        datasets.attach(clash)
    with_test = a.with_test(a.x[:3, ..., 0], [0, 1, 2])
    assert with_test.name != a.name and with_test.name.startswith("arrays-")  # other data, other default name


def test_a_study_reopened_with_other_data_or_settings_is_refused_naming_what_differs(runs_dir):
    from hpo_nb import Experiment

    rng = np.random.default_rng(2)
    first = datasets.from_arrays(rng.random((30, 8, 8)), np.arange(30) % 3, name="same-name-t")
    Experiment(first, name="ident-t", max_epochs=3, runs_dir=runs_dir, progress="none")
    other = datasets.from_arrays(rng.random((30, 8, 8)), np.arange(30) % 3, name="same-name-u")
    with pytest.raises(ConfigError, match=r"other data \(your own, .same-name-t., fingerprint .*another name="):
        Experiment(other, name="ident-t", max_epochs=3, runs_dir=runs_dir, progress="none")
    reopened = Experiment(first, name="ident-t", max_epochs=5, runs_dir=runs_dir, progress="none")
    with pytest.raises(ConfigError, match=r"max_epochs=3 \(now 5\); new trials would not be comparable"):
        reopened.start()  # reading its results is fine; adding trials is not
    with pytest.raises(ConfigError, match=r"another search space \(filters: "):
        Experiment(first, name="ident-t", max_epochs=3, runs_dir=runs_dir, progress="none",
                   search_space={"filters": 8}).start()
    Experiment(first, name="ident-t", max_epochs=3, runs_dir=runs_dir, progress="none")  # the same: resumes
