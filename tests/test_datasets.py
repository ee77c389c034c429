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
    monkeypatch.setattr(datasets, "_network_available", lambda *a, **k: False)
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
