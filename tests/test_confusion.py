"""The confusion-matrix figure with many classes (the most confused shown, a bounded height, the
full matrix kept) and undefined per-class scores (0/0 stays undefined, as scikit-learn's
zero_division=np.nan, and is drawn as a marker, not as a bar of 0). No training here."""

from __future__ import annotations

import numpy as np
import pytest

from hpo_nb.analysis import diagnostics as data
from hpo_nb.analysis.confusion import MAX_CLASSES
from hpo_nb.diagnostics import collect
from hpo_nb.errors import ConfigError
from hpo_nb.views import diagnostic_plots as plots


def many_classes(k: int = 150, confused=(3, 41, 77, 149)) -> dict:
    """A k-class stored record: 10 right per class, and the ``confused`` classes mixed up with
    each other (more for the first ones), plus one stray error between two quiet classes."""
    cm = np.eye(k, dtype=int) * 10
    for rank, i in enumerate(confused):
        for j in confused:
            if i != j:
                cm[i, j] += 20 - 4 * rank
    cm[100, 101] += 1
    return {"confusion_matrix": cm.tolist(), "class_names": [f"class_{i}" for i in range(k)]}


# ------------------------------------------------------------------ many classes, as data


def test_more_classes_than_the_limit_show_the_most_confused_and_keep_the_full_matrix():
    info = data.confusion_info(many_classes(), 0)
    view = data.confusion_view(info)
    assert info.matrix.shape == (150, 150) and len(view.shown) == MAX_CLASSES == 30
    assert {3, 41, 77, 149, 100, 101} <= set(view.shown.tolist())  # every class with an error
    assert view.shown.tolist() == sorted(view.shown.tolist())  # in class order
    assert view.matrix.shape == (30, 30) and view.class_names[0] == "class_0"  # ties: the lower index
    total = int(info.matrix.sum() - np.trace(info.matrix))
    assert f"30 of 150 classes shown" in view.note and f"{total:,} of the {total:,} misclassified" in view.note
    assert "top_k=None" in view.note and "classes=" in view.note


def test_the_ranking_is_by_misclassified_samples_as_true_or_predicted_class():
    cm = np.array([[9, 0, 0, 0], [0, 9, 5, 0], [1, 0, 9, 0], [0, 0, 3, 9]])
    info = data.ConfusionInfo(cm, list("abcd"))
    assert info.errors.tolist() == [1, 5, 9, 3]  # row off-diagonal + column off-diagonal
    assert data.confusion_view(info, top_k=2).shown.tolist() == [1, 2]
    assert data.confusion_view(info, top_k=3).shown.tolist() == [1, 2, 3]
    assert data.confusion_view(info, top_k=4).complete and data.confusion_view(info, top_k=4).note == ""


def test_chosen_classes_come_in_the_order_given_and_shares_stay_those_of_the_whole_row():
    info = data.confusion_info(many_classes(), 0)
    view = data.confusion_view(info, classes=["class_77", 3, "class_77"])
    assert view.shown.tolist() == [77, 3] and view.chosen and "the classes asked for" in view.note
    row = info.matrix[77]
    assert view.share[0, 0] == pytest.approx(row[77] / row.sum())  # of all 150 columns, not of the 2 shown
    assert view.share[0, 1] == pytest.approx(row[3] / row.sum())
    assert data.confusion_view(info, top_k=None).complete


@pytest.mark.parametrize("kwargs, match", [
    ({"classes": ["nope"]}, "'nope' is neither a class name"),
    ({"classes": [150]}, "index in 0..149"),
    ({"classes": [True]}, "neither a class name"),
    ({"classes": []}, "at least one class"),
    ({"top_k": 0}, "top_k must be an int >= 1"),
    ({"top_k": 2.5}, "top_k must be"),
])
def test_bad_class_choices_are_refused_with_what_to_pass(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        data.confusion_view(data.confusion_info(many_classes(), 0), **kwargs)


# ------------------------------------------------------------------ many classes, drawn


def test_a_150_class_figure_has_a_bounded_height_and_says_what_it_left_out():
    info = data.confusion_info(many_classes(), 0)
    fig = plots.confusion_matrix(info)
    heatmap = fig.data[0]
    assert len(heatmap.y) == len(heatmap.x) == 30 and np.shape(heatmap.z) == (30, 30)
    assert fig.layout.height <= plots.MAX_CONFUSION_HEIGHT == 1000
    assert "30 of 150 classes shown" in fig.layout.title.subtitle.text
    everything = plots.confusion_matrix(data.confusion_view(info, top_k=None))
    assert len(everything.data[0].y) == 150 and everything.layout.height <= 1000  # 28 px a row would be 4,360
    assert everything.layout.title.subtitle.text is None
    few = plots.confusion_matrix(data.confusion_info({"confusion_matrix": np.eye(10, dtype=int).tolist()}, 0))
    assert len(few.data[0].y) == 10 and few.layout.height - few.layout.margin.t - few.layout.margin.b >= 300


def test_experiment_plot_confusion_matrix_takes_classes_and_top_k(tmp_path):
    import optuna

    from hpo_nb import Experiment
    from hpo_nb.records import STATE_ATTR

    exp = Experiment("digits", n_trials=1, max_epochs=1, runs_dir=tmp_path, progress="none", name="many")
    exp.study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE, value=0.5, params={},
        user_attrs={STATE_ATTR: "complete", "diagnostics": many_classes(), "epochs_run": 1}))
    number = exp.study.trials[-1].number
    assert len(exp.plot_confusion_matrix(number).data[0].y) == 30
    assert len(exp.plot_confusion_matrix(number, top_k=5).data[0].y) == 5
    assert list(exp.plot_confusion_matrix(number, classes=["class_149", 0]).data[0].y) == ["class_149", "class_0"]
    assert len(exp.plot_confusion_matrix(number, top_k=None).data[0].y) == 150
    assert len(exp.trial(number).diagnostics["confusion_matrix"]) == 150  # the record keeps every class
    with pytest.raises(ConfigError, match="neither a class name"):
        exp.plot_confusion_matrix(number, classes=["class_150"])


# ------------------------------------------------------------------ long class names, many rows


LONG = [f"Very long category name number {k:03d} (subgroup alpha)" for k in range(120)]


def long_names(k: int) -> data.ConfusionInfo:
    cm = np.eye(k, dtype=int) * 10
    cm[np.arange(0, k, 2), np.arange(1, k, 2)] = np.arange(k // 2) % 7  # errors of different sizes
    return data.ConfusionInfo(cm, LONG[:k])


def px_layout(fig) -> dict:
    """Where things land, px: the plot area's width, the matrix's sides, the colorbar's right end,
    where the per-class panel's y labels start (its domain less their width and standoff)."""
    from hpo_nb.views.ticklabels import label_px

    lay = fig.layout
    plot_w = lay.width - lay.margin.l - lay.margin.r
    heat = fig.data[0]
    return {"matrix_w": (lay.xaxis.domain[1] - lay.xaxis.domain[0]) * plot_w,
            "matrix_h": lay.height - lay.margin.t - lay.margin.b,
            "colorbar_end": heat.colorbar.x * plot_w + heat.colorbar.thickness + 45,  # bar, then its tick labels
            "bar_labels_start": lay.xaxis2.domain[0] * plot_w - label_px(lay.yaxis2.ticktext) - 8,
            "row_labels": label_px(lay.yaxis.ticktext), "column_labels": label_px(lay.xaxis.ticktext)}


@pytest.mark.parametrize("top_k", [MAX_CLASSES, 8])
def test_long_class_names_are_shortened_and_every_label_has_its_room(top_k):
    fig = plots.confusion_matrix(data.confusion_view(long_names(64), top_k=top_k))
    lay, heat, at = fig.layout, fig.data[0], px_layout(fig)
    assert len(heat.y) == top_k and all(len(label) <= 24 and "…" in label for label in heat.y)
    assert len(set(heat.y)) == top_k  # still tell the classes apart
    assert heat.customdata[0][1][0] in LONG and heat.customdata[0][1][1] in LONG  # full names in the hover
    assert "%{customdata[0]}" in heat.hovertemplate and fig.data[1].customdata[0][0] in LONG
    # the per-class labels start right of the colorbar, the row labels fit the left margin, the
    # (rotated) column labels the bottom one, and the matrix keeps a usable size
    assert at["bar_labels_start"] >= at["colorbar_end"]
    assert lay.margin.l >= at["row_labels"] + 20 and lay.margin.b >= at["column_labels"] + 20
    assert at["matrix_w"] >= 300 and at["matrix_h"] >= 300
    # every row labelled, on both panels, each with at least 14 px
    assert list(lay.yaxis.tickvals) == list(heat.y) and len(lay.yaxis2.tickvals) == top_k
    assert at["matrix_h"] / top_k >= 14


def test_all_120_classes_label_every_kth_row_so_labels_never_overlap():
    fig = plots.confusion_matrix(data.confusion_view(long_names(120), top_k=None))
    lay, at = fig.layout, px_layout(fig)
    assert len(fig.data[0].y) == 120 and lay.height <= plots.MAX_CONFUSION_HEIGHT
    row_px = at["matrix_h"] / 120
    for ticks in (lay.yaxis.tickvals, lay.yaxis2.tickvals, lay.xaxis.tickvals):
        assert 1 < len(ticks) < 120
        assert 120 / len(ticks) * row_px >= 14  # label spacing, px
    assert lay.yaxis2.ticktext == lay.yaxis.ticktext  # the same rows labelled beside both panels


def test_short_labels_keep_short_names_and_tell_long_ones_apart():
    from hpo_nb.views.ticklabels import short_labels

    assert short_labels(["cat", "dog"]) == ["cat", "dog"]
    assert short_labels(LONG[:2]) == ["…000 (subgroup alpha)", "…001 (subgroup alpha)"]
    assert short_labels(["a name far longer than the limit allows", "b"]) == ["a name far longer than…", "b"]


# ------------------------------------------------------------------ undefined scores


# true x predicted: "bird" is never predicted (precision 0/0), "fish" has no sample but is predicted
# (recall 0/0), "none" has neither (precision, recall and F1 0/0)
NAMES = ["cat", "dog", "bird", "fish", "none"]
Y_TRUE = [0, 0, 0, 1, 1, 1, 2, 2, 0]
Y_PRED = [0, 0, 1, 1, 1, 3, 0, 1, 0]


def test_undefined_scores_stay_undefined_as_scikit_learn_defines_them():
    from sklearn.metrics import precision_recall_fscore_support

    info = data.confusion_info(collect.classification_report(Y_PRED, Y_TRUE, NAMES), 0)
    table = info.per_class()
    expected = precision_recall_fscore_support(Y_TRUE, Y_PRED, labels=range(5), zero_division=np.nan)
    for column, values in zip(("precision", "recall", "f1", "support"), expected):
        np.testing.assert_allclose(table[column].to_numpy(dtype=float), values, equal_nan=True)
    assert np.isnan(table.loc["bird", "precision"]) and table.loc["bird", "recall"] == 0 == table.loc["bird", "f1"]
    assert np.isnan(table.loc["fish", "recall"]) and table.loc["fish", "precision"] == 0
    assert table.loc["none"][["precision", "recall", "f1"]].isna().all()
    assert table["predicted"].tolist() == [4, 4, 0, 1, 0]


def test_an_undefined_score_has_no_bar_but_a_marker_that_says_why_and_a_zero_keeps_its_bar():
    info = data.confusion_info(collect.classification_report(Y_PRED, Y_TRUE, NAMES), 0)
    fig = plots.confusion_matrix(info)
    traces = {t.name: t for t in fig.data[1:]}
    bird, fish, none = 2, 3, 4
    precision, marks = traces["precision"], traces["precision undefined (0/0)"]
    assert np.isnan(precision.x[bird]) and precision.x[0] == pytest.approx(3 / 4)  # cat: 3 of 4 predicted
    assert list(marks.hovertext) == ["bird precision: undefined: no validation sample was predicted as bird",
                                     "none precision: undefined: no validation sample was predicted as none"]
    assert list(marks.x) == [0, 0] and marks.showlegend
    # each marker sits in its class's row, in the precision bar's slot
    lo, hi = precision.offset, precision.offset + precision.width
    assert [lo < y - row < hi for y, row in zip(marks.y, (bird, none))] == [True, True]
    recall, recall_marks = traces["recall"], traces["recall undefined (0/0)"]
    assert recall.x[bird] == 0 and np.isnan(recall.x[fish])  # a real 0 is a (zero-length) bar, not a marker
    assert [h.split(":")[0] for h in recall_marks.hovertext] == ["fish recall", "none recall"]
    assert "no validation sample of fish" in recall_marks.hovertext[0]
    f1_marks = traces["f1 undefined (0/0)"]
    assert list(f1_marks.hovertext) == ["none f1: undefined: none has no validation sample and none was predicted "
                                        "as it"]
    assert not any(t.name.endswith("(0/0)") and t.showlegend for t in
                   plots.confusion_matrix(data.ConfusionInfo(np.eye(3, dtype=int), list("abc"))).data[1:])
