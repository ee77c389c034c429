"""Your own data as a new user brings it (issue 15, the new-user check): pandas objects whose
indexes disagree, near-duplicate labels, small-range integer pixels, a BOM in a list of lines,
the CLI's wording, pandas' saved index column, a CSV with another separator, stray files in image
folders, and the encoding hint. Nothing here trains."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from hpo_nb import datasets
from hpo_nb.cli import _parser
from hpo_nb.datafile import cli_words, dataset_from_args
from hpo_nb.errors import ConfigError

from .owndata_support import images, png_folder, pixel_csv, sentences

RNG = np.random.default_rng(0)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _cli(*argv: str):
    return dataset_from_args(_parser().parse_args(["run", *argv]))


# ------------------------------------------------------------------------- 1. pandas index alignment


def _frame(n: int = 60):
    x, y = images(n // 2)
    return pd.DataFrame(x.reshape(len(x), -1).astype("float32") / 255), pd.Series(np.where(y == 1, "sq", "plain"))


def test_a_shuffled_frame_and_its_original_target_are_paired_by_index_and_said_so():
    df, y = _frame()
    shuffled = df.sample(frac=1, random_state=0)
    with pytest.warns(UserWarning, match=r"y reordered to x's index .*reset_index\(drop=True\)"):
        ds = datasets.from_arrays(shuffled, y)
    bright = ds.x.reshape(len(ds.x), -1).mean(axis=1) > 0.2  # the square class is the bright one
    assert np.array_equal(np.array(ds.class_names)[ds.y] == "sq", bright)
    held = _quiet(datasets.from_arrays, df, y, test=(shuffled, y))  # a test pair is aligned too
    assert np.array_equal(np.array(held.class_names)[held.y_test] == "sq",
                          held.x_test.reshape(len(held.x_test), -1).mean(axis=1) > 0.2)
    same = _quiet(datasets.from_arrays, df, y)  # indexes equal: by position, as before
    assert np.array_equal(same.y, ds.y[np.argsort(shuffled.index.to_numpy())])


def test_pandas_objects_whose_indexes_differ_are_refused_naming_the_fix():
    df, y = _frame()
    with pytest.raises(ConfigError, match=r"indexes differ .*reset_index\(drop=True\) on both"):
        datasets.from_arrays(df.iloc[:60], y.set_axis(range(100, 160)))
    ds = _quiet(datasets.from_arrays, df.reset_index(drop=True), y.to_numpy())  # NumPy y: by position
    assert len(ds.x) == 60


# ------------------------------------------------------------------------- 2. near-duplicate labels


@pytest.mark.parametrize("odd", ["dog ", "Dog"])
def test_labels_differing_only_by_spaces_or_case_are_announced_with_how_to_merge(odd):
    x = RNG.random((60, 8, 8))
    y = np.array(["dog"] * 20 + [odd] * 20 + ["cat"] * 20)
    pair = ", ".join(repr(v) for v in sorted({"dog", odd}))
    with pytest.warns(UserWarning, match=rf"only by surrounding spaces or case are separate classes \({pair}\).*str\.strip"):
        ds = datasets.from_arrays(x, y)
    assert ds.num_classes == 3  # kept apart: they may be meant, but never silently


# ------------------------------------------------------------------------- 3. integer pixel scaling


def test_integer_pixels_of_a_small_range_say_they_were_divided_by_255():
    x = RNG.integers(0, 17, (60, 8, 8))  # int64 0..16, as pd.read_csv gives digits
    with pytest.warns(UserWarning, match=r"int64 pixels 0\.\.16 divided by 255 .*pass scale=1/16"):
        ds = datasets.from_arrays(x, np.arange(60) % 3)
    assert ds.scale == pytest.approx(1 / 255)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # uint8 0..255: the rule goes without saying
        datasets.from_arrays(RNG.integers(0, 256, (60, 8, 8)).astype("uint8"), np.arange(60) % 3)
        datasets.from_arrays(x, np.arange(60) % 3, scale=1 / 16)


def test_float_whole_numbers_of_a_small_range_name_the_range_found_and_the_scale_to_pass():
    """digits' 0..16 as floats (load_digits().data.reshape(-1, 8, 8)): the note said "0..255"."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x, y = bunch.data.reshape(-1, 8, 8)[:90], bunch.target[:90]
    with pytest.warns(UserWarning, match=r"float images holding whole numbers 0\.\.16 divided by 255 .*; pass "
                                         r"scale=1/16 if 16 is their full range, or scale=1 to keep them as they are"):
        ds = datasets.from_arrays(x, y)
    assert ds.scale == pytest.approx(1 / 255)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert datasets.from_arrays(x, y, scale=1 / 16).x.max() == 1.0


# ------------------------------------------------------------------------- 4. BOM in a list of lines


def test_a_bom_on_the_first_of_a_list_of_lines_is_dropped():
    texts, labels = sentences(10)
    lines = [f"{lab}\t{t}" for lab, t in zip(labels, texts)]
    lines[0] = "\ufeff" + lines[0]
    ds = _quiet(datasets.from_text_lines, lines, sep="\t")
    assert ds.class_names == ["neg", "pos"]


# ------------------------------------------------------------------------- 5. the CLI's wording


def test_constructor_messages_name_the_cli_flags():
    assert cli_words("needs sep= (e.g. sep='\\t')") == "needs --sep (e.g. --sep '\\t')"
    assert cli_words("pass label= (CLI: --label-column) with one of") == "pass --label-column with one of"
    assert cli_words("image_size must be (height, width)") == "--image-size must be (height, width)"
    assert cli_words("pass label_first=False.") == "pass --label-last."
    assert cli_words("(encoding='latin-1' decodes)") == "(--encoding 'latin-1' decodes)"
    assert cli_words("label=str.strip or columns=.") == "label=str.strip or columns=."  # Python only: kept


def test_cli_errors_from_the_constructors_use_flags(tmp_path):
    (tmp_path / "semi.csv").write_text("label;a;b;c;d\n" + "x;1;2;3;4\n" * 6)
    with pytest.raises(ConfigError, match=r"holds ';': pass --sep ';'") as err:
        _cli("--data", str(tmp_path / "semi.csv"))
    assert "sep=" not in str(err.value)
    (tmp_path / "t.txt").write_bytes("pos\tgood\nneg\tbad\n".encode() + b"\xe9t\xe9\tok\n")
    with pytest.raises(ConfigError, match="pass --encoding with") as err:
        _cli("--data", str(tmp_path / "t.txt"))
    assert "encoding=" not in str(err.value).split("(")[0]


def test_label_last_without_sep_uses_the_tab_the_help_promises(tmp_path):
    texts, labels = sentences(10)
    (tmp_path / "lines.txt").write_text("".join(f"{t}\t{lab}\n" for t, lab in zip(texts, labels)))
    ds = _quiet(_cli, "--data", str(tmp_path / "lines.txt"), "--label-last")
    assert ds.class_names == ["neg", "pos"] and len(ds.x) == 20
    run_help = _parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert "a tab by default" in " ".join(run_help.split())


def test_cli_takes_validation_fraction_and_the_small_split_advice_names_it():
    from hpo_nb.baseline import small_validation

    assert _parser().parse_args(["run", "--validation-fraction", "0.3"]).validation_fraction == 0.3
    assert "--validation-fraction" in small_validation(9)


@pytest.mark.parametrize("size, words", [("0x0", "--image-size sizes must be positive"),
                                         ("big", "--image-size must look like 32x32")])
def test_image_size_errors(tmp_path, size, words):
    with pytest.raises(ConfigError, match=words):
        _cli("--data", str(tmp_path), "--image-size", size)


# ------------------------------------------------------------------------- 6. CSVs as pandas writes them


def test_pandas_saved_index_column_is_dropped_and_said_so(tmp_path):
    x, y = images(20)
    df = pd.DataFrame(x.reshape(len(x), -1))
    df.insert(0, "label", y)
    df.to_csv(tmp_path / "with_index.csv")  # index=True: an 'Unnamed: 0' column of 0..n-1
    with pytest.warns(UserWarning, match=r"'Unnamed: 0' .* dropped; .*to_csv\(index=False\)"):
        ds = datasets.from_csv(tmp_path / "with_index.csv")
    assert ds.input_shape == (8, 8, 1) and len(ds.x) == 40


def test_a_single_column_whose_name_holds_a_separator_suggests_sep(tmp_path):
    path = pixel_csv(tmp_path / "p.csv", n=4)
    pd.read_csv(path).to_csv(tmp_path / "semi.csv", sep=";", index=False)
    with pytest.raises(ConfigError, match=r"reads as one column with sep=',', and its header holds ';': "
                                          r"pass sep=';'") as err:
        datasets.from_csv(tmp_path / "semi.csv")
    assert len(str(err.value)) < 200


# ------------------------------------------------------------------------- 7. image folders


def test_a_stray_text_file_among_images_is_named(tmp_path):
    root = png_folder(tmp_path / "d", n=4)
    (root / "plain" / "notes.txt").write_text("to do")
    with pytest.raises(ConfigError, match=r"\(1 .txt files: .*notes.txt\).*move it out"):
        datasets.from_directory(root)


def test_files_of_other_types_are_counted_by_extension_once(tmp_path):
    root = png_folder(tmp_path / "d", n=6)
    for i in range(3):
        (root / "plain" / f"{i}.webp").write_bytes(b"RIFF")
    (root / "square" / "scan.tif").write_bytes(b"II*")
    with pytest.warns(UserWarning, match=r"4 files of other types skipped \(.webp x3, .tif x1\)") as record:
        ds = datasets.from_directory(root)
    assert len(ds.x) == 12 and sum("skipped" in str(w.message) for w in record) == 1


def test_class_names_selecting_one_folder_says_so(tmp_path):
    root = png_folder(tmp_path / "d", n=4)
    with pytest.raises(ConfigError, match=r"class_names selects 1 of the 2 class folders"):
        datasets.from_directory(root, class_names=["plain"])


# ------------------------------------------------------------------------- 8. encoding wording


def test_a_latin_1_family_guess_is_worded_as_a_guess_and_suggests_latin_1(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_bytes(("pos\tun film très réussi, émouvant et drôle\n" * 20).encode("latin-1"))
    with pytest.raises(ConfigError, match=r"looks like .*encoding='latin-1'") as err:
        datasets.from_text_lines(path, sep="\t")
    assert "reads as" not in str(err.value)
