"""The validation pass (issue 15, item 2): every example of the issue, as data (nothing trains)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hpo_nb import Experiment, datasets
from hpo_nb.errors import ConfigError

RNG = np.random.default_rng(0)
X8 = RNG.random((60, 8, 8))  # floats in [0, 1]: no scaling, no notice
D16 = RNG.integers(0, 17, (60, 8, 8))  # digits-like 0..16
Y3 = np.arange(60) % 3


def _quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return datasets.from_arrays(*args, **kwargs)


# ------------------------------------------------------------------------- labels


def test_labels_are_mapped_to_0_k_whatever_their_values_and_the_values_kept_as_names():
    with pytest.warns(UserWarning, match="labels 1, 2, 3 mapped to classes 0..2"):
        ds = datasets.from_arrays(X8, Y3 + 1)
    assert ds.num_classes == 3 and sorted(set(ds.y)) == [0, 1, 2] and ds.class_names == ["1", "2", "3"]
    sparse = _quiet(X8, np.where(Y3 == 2, 7, Y3))  # values 0, 1, 7
    assert sparse.num_classes == 3 and sparse.class_names == ["0", "1", "7"]
    plain = datasets.from_arrays(X8, Y3)  # already 0..K-1: no names invented, no warning
    assert plain.class_names is None and plain.num_classes == 3
    floats = datasets.from_arrays(X8, Y3.astype(float))  # whole-number floats (pandas) are integers
    assert floats.num_classes == 3 and floats.class_names is None
    onehot = datasets.from_arrays(X8, np.eye(3, dtype=int)[Y3])
    assert onehot.num_classes == 3 and np.array_equal(onehot.y, Y3)


@pytest.mark.parametrize("y, words", [
    (np.ones(60, int), r"y has one class \('1'\)"),
    (RNG.normal(size=60), "continuous target"),
    (np.array([[1, 1, 0], [1, 0, 0], [0, 1, 0]] * 20), "multi-hot rows"),
    (np.where(Y3 == 0, np.nan, Y3), "NaN/inf labels"),
    (np.array(["a", None, "b"] * 20, dtype=object), "missing labels"),
    (np.arange(60), "more classes than make sense: 60 classes for 60 samples"),
    (np.r_[np.zeros(58, int), [1, 1]], r"classes too small .* 1 \(2 samples\).*at least 3"),
])
def test_labels_that_cannot_train_a_classifier_are_refused_with_the_fix(y, words):
    with pytest.raises(ConfigError, match=words):
        datasets.from_arrays(X8, y)


def test_two_samples_per_class_are_enough_without_a_carved_test_split():
    ds = datasets.from_arrays(X8[:6], [0, 0, 1, 1, 2, 2], test_fraction=0)
    assert ds.num_classes == 3


# ------------------------------------------------------------------------- inputs


def test_nan_or_inf_pixels_are_refused_before_training():
    x = X8.copy()
    x[5, 2, 2] = np.nan
    with pytest.raises(ConfigError, match="1 NaN/inf values, the first in sample 5"):
        datasets.from_arrays(x, Y3)
    x = (D16 * 15).astype(float)  # 0..240: would have been divided by 255 if finite
    x[0, 0, 0] = np.inf
    with pytest.raises(ConfigError, match="NaN/inf"):
        datasets.from_arrays(x, Y3)


def test_flat_int64_pixel_rows_from_a_csv_are_images_not_token_ids():
    rows = RNG.integers(0, 256, (60, 784)).astype("int64")  # what pd.read_csv(...).values gives
    with pytest.warns(UserWarning, match="taken for 28x28 images"):
        ds = datasets.from_arrays(rows, Y3)
    assert ds.modality == "image" and ds.input_shape == (28, 28, 1) and ds.scale == 1 / 255
    assert 0 <= ds.x.min() and ds.x.max() <= 1
    tokens = datasets.from_arrays(RNG.integers(1, 5000, (60, 100)), Y3)  # ids beyond 255: text
    assert tokens.modality == "text"
    assert datasets.from_arrays(RNG.integers(1, 50, (60, 10)), Y3).modality == "text"  # not square: token ids
    with pytest.raises(ConfigError, match="cannot tell whether x .* modality="):
        datasets.from_arrays(RNG.integers(0, 256, (60, 10)).astype("uint8"), Y3)  # 8-bit but not square


def test_a_dataframe_as_x_gives_its_rows_and_a_series_as_y_works():
    rows = RNG.integers(0, 256, (60, 64))
    frame = pd.DataFrame(rows, columns=[f"pixel{i}" for i in range(64)])
    ds = _quiet(frame, pd.Series(Y3 + 1))
    assert len(ds.x) == 60 and ds.input_shape == (8, 8, 1) and ds.class_names == ["1", "2", "3"]
    square = pd.DataFrame(RNG.integers(0, 256, (100, 100)))  # rows == columns: still rows, still images
    assert _quiet(square, np.arange(100) % 2).input_shape == (10, 10, 1)
    texts = pd.DataFrame({"text": ["good film", "bad film"] * 30})
    assert datasets.from_arrays(texts, ["pos", "neg"] * 30).modality == "text"
    with pytest.raises(ConfigError, match="non-numeric columns"):
        datasets.from_arrays(pd.DataFrame({"text": ["a b"] * 60, "other": ["c"] * 60}), Y3)


def test_a_list_of_images_of_different_sizes_is_refused_not_taken_for_text():
    images = [np.zeros((8, 8)) for _ in range(30)] + [np.zeros((10, 10)) for _ in range(30)]
    with pytest.raises(ConfigError, match=r"images of different sizes \(\(8, 8\) x30, \(10, 10\) x30\).*resize"):
        datasets.from_arrays(images, Y3)
    same = datasets.from_arrays([np.zeros((8, 8)) + i % 2 for i in range(60)], Y3)
    assert same.modality == "image" and same.input_shape == (8, 8, 1)


def test_channels_first_images_are_moved_and_ambiguous_layouts_refused():
    with pytest.warns(UserWarning, match="channels-first"):
        ds = datasets.from_arrays(RNG.integers(0, 256, (60, 3, 16, 16)).astype("uint8"), Y3)
    assert ds.input_shape == (16, 16, 3)
    assert datasets.from_arrays(RNG.random((60, 16, 16, 3)), Y3).input_shape == (16, 16, 3)
    with pytest.raises(ConfigError, match="cannot tell where the channels are"):
        datasets.from_arrays(RNG.random((60, 3, 8, 4)), Y3)


def test_intensity_scaling_follows_the_dtype():
    u8 = datasets.from_arrays(RNG.integers(0, 256, (60, 8, 8)).astype("uint8"), Y3)
    assert u8.scale == 1 / 255 and u8.x.max() <= 1
    u16 = datasets.from_arrays(RNG.integers(0, 65536, (60, 8, 8)).astype("uint16"), Y3)
    assert u16.scale == 1 / 65535 and 0.9 < u16.x.max() <= 1
    z = RNG.normal(size=(60, 8, 8))  # z-scored floats are left alone (not squeezed to a tenth)
    zs = datasets.from_arrays(z, Y3)
    assert zs.scale == 1.0 and np.allclose(zs.x[..., 0], z, atol=1e-6)
    unit = datasets.from_arrays(RNG.random((60, 8, 8)), Y3)
    assert unit.scale == 1.0
    with pytest.warns(UserWarning, match="whole numbers 0..255 divided by 255"):
        whole = datasets.from_arrays(RNG.integers(0, 256, (60, 8, 8)).astype("float32"), Y3)
    assert whole.scale == 1 / 255
    small_ints = datasets.from_arrays(D16, Y3)  # ints 0..16: 8-bit by dtype rule
    assert small_ints.scale == 1 / 255
    assert datasets.load("digits").scale == 1 / 16  # digits' loader says 0..16
    assert datasets.from_arrays(D16, Y3, scale=1 / 16).x.max() == 1.0
    with pytest.raises(ConfigError, match="negative values"):
        datasets.from_arrays(RNG.integers(-5, 5, (60, 8, 8)), Y3)


@pytest.mark.parametrize("texts", [[""] * 60, ["...", "!!", "-- ,"] * 20])
def test_texts_without_words_are_refused_before_the_vocabulary_is_empty(texts):
    with pytest.raises(ConfigError, match="no words: all 60 texts are empty or punctuation only"):
        datasets.from_arrays(texts, Y3)


# ------------------------------------------------------------------------- test split and predict


def test_test_labels_are_checked_against_the_datasets_classes():
    names = np.array(["cat", "dog", "eel"])[Y3]
    with pytest.raises(ConfigError, match=r"y_test holds numbers, but dataset .* label names \(cat, dog, eel\)"):
        datasets.from_arrays(X8, names, test=(X8[:6], [0, 1, 2] * 2))
    shifted = _quiet(X8, Y3 + 1, test=(X8[:6], [3, 1, 2] * 2))  # values, mapped like the training labels
    assert list(shifted.y_test) == [2, 0, 1] * 2
    with pytest.raises(ConfigError, match=r"test labels \[0\] are not classes"):
        _quiet(X8, Y3 + 1, test=(X8[:3], [0, 1, 2]))
    with pytest.raises(ConfigError, match="y_test holds names"):
        datasets.from_arrays(X8, Y3, test=(X8[:2], ["a", "b"]))


def test_test_with_samples_only_is_a_config_error_not_a_type_error(runs_dir):
    with pytest.raises(ConfigError, match=r"test must be a pair \(x_test, y_test\).*shape \(6, 8, 8\)"):
        datasets.from_arrays(X8, Y3, test=X8[:6])
    ds = datasets.from_arrays(X8, Y3, name="pair-t")
    with pytest.raises(ConfigError, match=r"test must be a pair"):
        Experiment(ds, test=X8[:6], runs_dir=runs_dir, progress="none")


def test_prepare_raw_refuses_values_beyond_the_raw_range_and_empty_input():
    digits = datasets.load("digits")
    assert digits.raw_max == 16 and digits.prepare_raw(np.full((8, 8), 16.0)).shape == (1, 8, 8, 1)
    with pytest.raises(ConfigError, match=r"raw pixel values in 0..16 .*got values in 0..255"):
        digits.prepare_raw(np.full((2, 8, 8), 255.0) * (np.arange(2)[:, None, None]))
    with pytest.raises(ConfigError, match="no inputs to predict"):
        digits.prepare_raw([])
    with pytest.raises(ConfigError, match="NaN/inf"):
        digits.prepare_raw(np.full((8, 8), np.nan))
    zs = datasets.from_arrays(RNG.normal(size=(60, 8, 8)), Y3)
    assert zs.raw_max is None and zs.prepare_raw(np.full((8, 8), 40.0)).shape == (1, 8, 8, 1)


# ------------------------------------------------------------------------- property


_LABELS = st.one_of(
    st.lists(st.integers(0, 3), min_size=2, max_size=6).map(lambda v: v * 4),  # mostly valid
    st.lists(st.sampled_from([1, 5, 9]), min_size=2, max_size=6).map(lambda v: v * 3),
    st.lists(st.sampled_from(["x", "y"]), min_size=2, max_size=6).map(lambda v: v * 3),
    st.lists(st.integers(-3, 40), min_size=1, max_size=40),
    st.lists(st.sampled_from(["a", "b", "c", "", "ü"]), min_size=1, max_size=40),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=40),
    st.lists(st.sampled_from([0.0, 1.0, 2.0, 0.5]), min_size=1, max_size=40),
)
ACCEPTED: list[str] = []  # how many examples got through (see the test below)
_DTYPES = ["uint8", "uint16", "int64", "float32", "float64", "bool"]


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(labels=_LABELS, dtype=st.sampled_from(_DTYPES), shape=st.sampled_from([(4, 4), (16,), (2, 4, 4), (4, 4, 3),
                                                                                (5,), (3, 3, 3)]),
       data=st.data())
def test_the_validation_pass_returns_clean_classes_and_arrays_or_a_config_error(labels, dtype, shape, data):
    n = len(labels)
    if dtype == "bool":
        x = np.asarray(data.draw(st.lists(st.booleans(), min_size=n * int(np.prod(shape)),
                                          max_size=n * int(np.prod(shape))))).reshape((n, *shape))
    else:
        info = np.iinfo(dtype) if dtype[0] in "ui" else None
        values = st.integers(max(info.min, -300), min(info.max, 70000)) if info else \
            st.one_of(st.floats(-300, 300, width=32), st.sampled_from([np.nan, np.inf, 0.5, 255.0]))
        x = np.asarray(data.draw(st.lists(values, min_size=n * int(np.prod(shape)),
                                          max_size=n * int(np.prod(shape)))), dtype=dtype).reshape((n, *shape))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = datasets.from_arrays(x, labels, test_fraction=data.draw(st.sampled_from([0, 0.2])))
    except ConfigError:
        return
    ACCEPTED.append(ds.modality)
    assert ds.y.dtype == np.int32 and sorted(set(ds.y.tolist())) == list(range(ds.num_classes))
    assert ds.num_classes >= 2
    assert ds.class_names is None or len(ds.class_names) == ds.num_classes
    if ds.modality == "image":
        assert ds.x.dtype == np.float32 and ds.x.ndim == 4 and np.all(np.isfinite(ds.x))
        if dtype != "float32" and dtype != "float64":
            assert 0 <= ds.x.min() and ds.x.max() <= 1


def test_the_property_test_reaches_valid_datasets_too():
    if not ACCEPTED:  # run alone (-k): feed it again
        test_the_validation_pass_returns_clean_classes_and_arrays_or_a_config_error()
    # The examples are derandomized (the same 150 every run, 8 of them valid), so this is a fixed
    # guard that the strategies keep reaching the success path, not a flaky count.
    assert len(ACCEPTED) >= 5 and "image" in ACCEPTED


# ------------------------------------------------------------------------- text files (item 2, end)


def test_a_utf8_bom_does_not_make_a_third_class(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes("\ufeffpos\tgood film\nneg\tbad film\n".encode("utf-8") + b"pos\tgreat\r\nneg\tawful\r\n" * 20)
    ds = datasets.from_text_lines(path, sep="\t")
    assert ds.class_names == ["neg", "pos"] and len(ds.x) == 42 and ds.name.startswith("text-")
    assert not any(t.endswith("\r") for t in ds.x)


def test_lines_end_at_newlines_only_not_at_nel_inside_a_sentence(tmp_path):
    (tmp_path / "pos.txt").write_text("a fine\u0085film\nwarm\u2028and kind\n" * 10, encoding="utf-8")
    (tmp_path / "neg.txt").write_text("dull film\n" * 20, encoding="utf-8")
    ds = datasets.from_text_lines({"pos": tmp_path / "pos.txt", "neg": tmp_path / "neg.txt"})
    assert len(ds.x) == 40 and "a fine\u0085film" in ds.x
    one = tmp_path / "one.tsv"
    one.write_text("pos\tso\u0085good\nneg\tbad\n" * 10, encoding="utf-8")
    assert len(datasets.from_text_lines(one, sep="\t").x) == 20  # no "line has no separator"


def test_a_decode_error_names_the_encoding_option(tmp_path):
    path = tmp_path / "latin.tsv"
    path.write_bytes("pos\tcaf\u00e9 cr\u00e8me\nneg\tbad\n".encode("latin-1") * 10)
    with pytest.raises(ConfigError, match=r"not valid utf-8 \(byte 0xe9 .*encoding='latin-1'"):
        datasets.from_text_lines(path, sep="\t")
    assert "café crème" in datasets.from_text_lines(path, sep="\t", encoding="latin-1").x


def test_label_callable_maps_coarse_fine_labels_and_lists_and_file_objects_are_sources():
    import io

    lines = [f"{c}:{f} question {i}" for i, (c, f) in enumerate([("DESC", "manner"), ("HUM", "ind"),
                                                                  ("DESC", "def"), ("HUM", "gr")] * 10)]
    ds = datasets.from_text_lines(lines, sep=" ", label=lambda raw: raw.split(":")[0])
    assert ds.class_names == ["DESC", "HUM"] and all(":" not in t for t in ds.x)
    assert len(datasets.from_text_lines(io.StringIO("\n".join(lines)), sep=" ").x) == 40
    assert len(datasets.from_text_lines(io.BytesIO("\n".join(lines).encode()), sep=" ").x) == 40
    mapped = datasets.from_text_lines({"p": ["good"] * 5, "n": ["bad"] * 5}, label=str.upper)
    assert mapped.class_names == ["N", "P"]


def test_forgetting_label_first_false_says_so():
    lines = [f"review number {i} was {'good' if i % 2 else 'bad'}\t{'pos' if i % 2 else 'neg'}" for i in range(200)]
    with pytest.raises(ConfigError, match=r"200 classes for 200 lines.*only 2 distinct values: pass label_first=False"):
        datasets.from_text_lines(lines, sep="\t")
    assert datasets.from_text_lines(lines, sep="\t", label_first=False).class_names == ["neg", "pos"]


def test_prepare_raw_refuses_numbers_for_a_raw_text_model():
    texts = [f"message number {i} {'free prize' if i % 2 else 'see you'}" for i in range(40)]
    ds = datasets.from_arrays(np.asarray(texts, dtype=object), [i % 2 for i in range(40)], name="raw-text-predict")
    assert ds.is_raw_text and list(ds.prepare_raw("free prize now")) == ["free prize now"]
    with pytest.raises(ConfigError, match=r"raw text: pass a str or a list of str .*got int '1'\)"):
        ds.prepare_raw([1, 2, 3])
