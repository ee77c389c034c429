"""Snapshot in, displayed strings and numbers out: pure functions shared by every renderer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .. import health
from ..progress import FinishedTrial, RunningTrial, Snapshot
from ..values import short_value


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s" if m else f"{s}s"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f} %"


def fmt_score(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def score_label(mode: str, metric: str = "accuracy") -> str:
    """'Best score (accuracy)', '... (balanced accuracy + health)': what the score is made of."""
    what = metric.replace("_", " ")
    return f"Best score ({what})" if mode == "simple" else f"Best score ({what} + health)"


def trial_label(t: RunningTrial) -> str:
    """'Trial 7 · epoch 4/10 · 37 %': the percentage is of the trial's whole epoch budget, as its
    bar shows (``running_rows``). Before the first batch: 'building and compiling the model';
    a remote trial's queue state otherwise."""
    if t.status != "running":
        where = f" · {t.where}" if t.where and t.where != "local" else ""
        return f"Trial {t.trial} · {t.status.replace('_', ' ')}{where}"
    if t.epoch == 0:
        return f"Trial {t.trial} · building and compiling the model"
    return f"Trial {t.trial} · epoch {t.epoch}/{t.total_epochs} · {int(100 * t.overall_fraction)} %"


def trial_metrics(t: RunningTrial) -> str:
    parts = []
    if t.loss is not None:
        parts.append(f"loss {t.loss:.3f}")
    if t.accuracy is not None:
        parts.append(f"acc {t.accuracy:.3f}")
    if t.val_accuracy is not None:
        parts.append(f"val_acc {t.val_accuracy:.3f}")
    if t.where and t.where != "local":
        parts.append(t.where)
    return " · ".join(parts)


def search_state(s: Snapshot) -> str:
    """What the search is doing: running | stopping | stopped | finished | not started | not running.
    A snapshot that is ``done`` may also come from a study reopened without running it (the
    experiment's hub before ``start()``): its state then follows from the stored trials."""
    if not s.done:
        return "stopping" if s.stopping else "running"
    if s.stopping or (s.stopped and s.performed < s.total_trials):
        return "stopped"
    if s.performed >= s.total_trials:
        return "finished"
    return "not started" if not s.finished else "not running"


def overall_label(s: Snapshot) -> str:
    """'4/6 trials (0 running, 3 complete, 1 pruned, 0 failed; 2 stopped, not counted) · stopped'."""
    counts = f"{s.performed}/{s.total_trials} trials"
    details = ", ".join([f"{len(s.running)} running", f"{s.completed} complete", f"{s.pruned} pruned",
                         f"{s.failed} failed"])
    if s.stopped:
        details += f"; {s.stopped} stopped, not counted"
    eta = "" if s.done else f" · ETA {fmt_duration(s.eta_s)}"
    cost = remote_cost_usd(s)
    spent = "" if cost is None else f" · RunPod {fmt_usd(cost)}"
    state = search_state(s)
    tail = {"running": "", "stopping": " · stopping…", "finished": " · done"}.get(state, f" · {state}")
    return f"{counts} ({details}){eta}{spent}{tail}"


def remote_cost_usd(s: Snapshot) -> float | None:
    """What finished RunPod trials cost (failed attempts included); None when none ran there."""
    costs = [float(t.extra["cost_usd"]) for t in s.finished if isinstance(t.extra.get("cost_usd"), (int, float))]
    return sum(costs) if costs else None


def fmt_usd(value: float) -> str:
    """'$0.0264' for the cents a trial costs, '$12.40' once it adds up."""
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def overall_fraction(s: Snapshot) -> float:
    return min(1.0, s.performed / s.total_trials) if s.total_trials else 1.0


def best_of(s: Snapshot) -> tuple[FinishedTrial | None, bool]:
    """(the best trial, provisional): the complete trial with the highest score; only when no
    trial completed, the best partly trained one (stopped or pruned), marked provisional."""
    best = s.best_trial
    if best is not None:
        return best, False
    partial = [t for t in s.finished if t.state in ("stopped", "pruned") and (t.score or t.accuracy) is not None]
    return max(partial, key=lambda t: (t.score if t.score is not None else -1.0, t.accuracy or 0.0),
               default=None), True


@dataclass(frozen=True)
class Tile:
    """One summary tile: a label, a big value and an optional small note under it."""

    label: str
    value: str
    note: str = ""


def tiles(s: Snapshot, majority_rate: float | None = None, metric: str = "accuracy") -> list[Tile]:
    """Trials done (stopped ones noted, never counted), best accuracy and score (of a complete
    trial; of a partly trained one, said so, only when none completed), mean duration.
    ``majority_rate``: the validation accuracy of always answering the most common class, noted
    under the best accuracy (what a model must beat); ``metric``: what the score is made of
    (``Experiment(metric=)``)."""
    best, provisional = best_of(s)
    note = f"trial {best.trial}" + (f" ({best.state}, partly trained)" if provisional else "") if best else ""
    accuracy = best.accuracy if best else None
    score = best.score if best and not provisional else None
    return [
        Tile("Trials done", f"{s.performed}/{s.total_trials}",
             f"+{s.stopped} stopped, not counted" if s.stopped else f"{len(s.running)} running" if s.running else ""),
        Tile("Best accuracy", fmt_pct(accuracy, 2),
             " · ".join(x for x in (note, majority_note(majority_rate).strip(" ()")) if x)),
        Tile(score_label(s.mode, metric), fmt_score(score), note if not provisional else "no complete trial yet"),
        Tile("Mean duration per trial", fmt_duration(s.mean_duration_s),
             f"ETA {fmt_duration(s.eta_s)}" if not s.done else ""),
    ]


def arch_summary(architecture: Mapping[str, Any]) -> str:
    """'2 conv (16, 32) · 1 dense (64) · relu · 13.7k params'."""
    s = architecture.get("summary") or {}
    parts = []
    if s.get("conv_layers"):
        parts.append(f"{s['conv_layers']} conv ({', '.join(map(str, s['filters']))})")
    if s.get("lstm_layers"):
        kind = "biLSTM" if s.get("bidirectional") else "LSTM"
        parts.append(f"{s['lstm_layers']} {kind} ({', '.join(map(str, s['lstm_units']))})")
    if s.get("dense_layers"):
        parts.append(f"{s['dense_layers']} dense ({', '.join(map(str, s['dense_units']))})")
    if s.get("activations"):
        parts.append("/".join(s["activations"]))
    total = architecture.get("total_params") or s.get("total_params")
    if total:
        parts.append(f"{fmt_count(total)} params")
    return " · ".join(parts)


def fmt_count(n: int | float) -> str:
    n = float(n)
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else f"{int(n)}"


def finished_line(t: FinishedTrial) -> str:
    """One line per finished trial (console log, static summaries)."""
    head = f"Trial {t.trial} {t.state}"
    if t.state == "failed":
        return f"{head}: {t.error or 'unknown error'}"
    return (f"{head} · acc {fmt_pct(t.accuracy, 2)} · score {fmt_score(t.score)} · "
            f"{fmt_duration(t.duration_s)} · {arch_summary(t.architecture)}")


# ------------------------------------------------------------------ notebook dashboard
# Everything the dashboard shows is computed here from a snapshot, so it is tested as data;
# views/dashboard.py only copies these values into widgets (HTML from views/dashboard_html.py).

HEALTH_SHORT = health.SHORT

fmt_value = short_value  # a parameter value, short: 0.0031 -> '3.1e-03', 0.25 -> '0.25', True -> 'yes'

# Gallery orders beside the parameter columns: label -> (what is sorted, high values first by default).
SORTS: dict[str, tuple[str, bool]] = {
    "score": ("score", True),
    "accuracy": ("accuracy", True),
    "health": ("health_score", True),
    "trial #": ("trial", False),
    "duration": ("duration_s", False),
}
RANKED = frozenset({"score", "accuracy", "health_score"})  # partly trained trials rank after complete ones


def params_line(params: Mapping[str, Any]) -> str:
    """'batch_size=64 · learning_rate=3.1e-03 · optimizer=adam' (keys sorted)."""
    return " · ".join(f"{k}={fmt_value(v)}" for k, v in sorted(params.items()))


def health_line(health: Mapping[str, float]) -> str:
    """'grad 1.00 · dead 0.02 · …' in a fixed order; empty when the trial has no health metrics."""
    return " · ".join(f"{short} {health[k]:.2f}" for k, short in HEALTH_SHORT.items()
                      if isinstance(health.get(k), (int, float)))


def running_rows(s: Snapshot, slots: int) -> tuple[list[tuple[str, str, float]], str]:
    """(label, metrics, bar fraction) for the first ``slots`` running trials, and a note for the rest.
    The bar and the label's percentage both show the trial's whole epoch budget."""
    rows = [(trial_label(t), trial_metrics(t), t.overall_fraction) for t in s.running[:slots]]
    rest = len(s.running) - slots
    return rows, (f"+{rest} more running" if rest > 0 else "")


def gallery_params(s: Snapshot, searched: Sequence[str] | None = None) -> list[str]:
    """The parameter columns: the searched ones (``searched``, in order) when known, else those
    whose value differs between finished trials."""
    if searched is not None:
        return list(searched)
    seen: dict[str, set[str]] = {}
    for t in s.finished:
        for k, v in t.params.items():
            seen.setdefault(k, set()).add(repr(v))
    return sorted(k for k, values in seen.items() if len(values) > 1)


def sort_options(params: Sequence[str]) -> list[str]:
    """What the gallery can be sorted by: the metrics, then each parameter column."""
    return [*SORTS, *(p for p in params if p not in SORTS)]


def sort_column(sort: str) -> str:
    """The gallery column a sort key orders by."""
    return {"score": "Score", "accuracy": "Accuracy", "health": "Health", "trial #": "Trial",
            "duration": "Duration"}.get(sort, sort)


def default_descending(sort: str) -> bool:
    return SORTS.get(sort, ("", False))[1]


def _sort_value(t: FinishedTrial, sort: str) -> Any:
    key = SORTS.get(sort, (sort, False))[0]
    if key == "health_score":
        return t.health.get("health_score")
    if sort in SORTS:
        return getattr(t, key)
    return t.params.get(sort)


def sort_finished(trials: Sequence[FinishedTrial], sort: str = "score",
                  descending: bool | None = None) -> list[FinishedTrial]:
    """Trials in gallery order (ties by trial number). Missing values sort last; by score,
    accuracy or health, complete trials come before partly trained ones (pruned, stopped), so no
    stopped trial outranks a finished one."""
    if descending is None:
        descending = default_descending(sort)
    base = sorted(trials, key=lambda t: t.trial)
    present = [t for t in base if _sort_value(t, sort) is not None]
    missing = [t for t in base if _sort_value(t, sort) is None]

    def key(t: FinishedTrial) -> tuple[int, float, str]:
        v = _sort_value(t, sort)
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        return (0, float(v), "") if number else (1, 0.0, str(v))

    out = sorted(present, key=key, reverse=descending) + missing  # sorted() is stable, reversed too
    if SORTS.get(sort, (sort, False))[0] in RANKED:
        out = [t for t in out if t.state == "complete"] + [t for t in out if t.state != "complete"]
    return out


def gallery_columns(params: Sequence[str]) -> list[str]:
    """Metrics first (they stay in view when the parameter columns scroll), then one per parameter."""
    return ["Trial", "State", "Accuracy", "Score", "Health", "Duration", *params, "Architecture"]


def gallery_rows(s: Snapshot, sort: str = "score", descending: bool | None = None,
                 params: Sequence[str] | None = None) -> list[dict[str, str]]:
    """One row of display strings per finished trial, in the chosen order: one column per
    parameter (``gallery_params``), the health score as one number (the metrics are in the details)."""
    names = gallery_params(s) if params is None else list(params)
    rows = []
    for t in sort_finished(s.finished, sort, descending):
        h = t.health.get("health_score")
        rows.append({
            "Trial": str(t.trial),
            "State": t.state,
            **{p: fmt_value(t.params[p]) if p in t.params else "–" for p in names},
            "Accuracy": fmt_pct(t.accuracy, 2),
            "Score": fmt_score(t.score),
            "Health": f"{h:.2f}" if isinstance(h, (int, float)) else "–",
            "Duration": fmt_duration(t.duration_s),
            "Architecture": arch_summary(t.architecture) or (t.error or ""),
        })
    return rows


def trial_option(t: FinishedTrial) -> str:
    """The trial picker's entry: 'Trial 3 · complete · score 0.9123'."""
    return f"Trial {t.trial} · {t.state} · score {fmt_score(t.score)}"


def stop_button(s: Snapshot) -> tuple[str, bool, bool]:
    """(description, disabled, shown) of the Stop button: shown and enabled only while a search
    runs; 'Stopping…' (disabled) while it ends; hidden afterwards (the state chip says how it ended)."""
    state = search_state(s)
    if state == "running":
        return ("Stop search", False, True)
    if state == "stopping":
        return ("Stopping…", True, True)
    return ("Stop search", True, False)


def state_chip(s: Snapshot) -> tuple[str, str]:
    """(text, kind) of the quiet state badge beside the title; kind is a CSS modifier."""
    state = search_state(s)
    text = {"running": "running", "stopping": "stopping…", "stopped": "stopped", "finished": "finished",
            "not started": "not started", "not running": "not running"}[state]
    return text, state.replace(" ", "-")


# ------------------------------------------------------------------ final test evaluation

def test_line(trial: int, test_accuracy: float, validation_accuracy: float | None, n_test: int,
              metric: str = "accuracy", validation_value: float | None = None,
              test_balanced: float | None = None) -> str:
    """'Test accuracy of trial 3 (the search's pick): 96.10 % on 359 held-out samples · validation
    97.20 % (what the search optimized)': the honest number beside the optimistic one. With
    ``metric="balanced_accuracy"``: the test balanced accuracy too, and the validation value of
    that metric (``validation_value``) as what the search optimized."""
    value = validation_accuracy if metric == "accuracy" else validation_value
    what = "" if metric == "accuracy" else f" {metric.replace('_', ' ')}"
    val = "" if value is None else f" · validation{what} {fmt_pct(value, 2)} (what the search optimized)"
    balanced = "" if metric != "balanced_accuracy" or test_balanced is None else \
        f" (balanced {fmt_pct(test_balanced, 2)})"
    return (f"Test accuracy of trial {trial} (the search's pick): {fmt_pct(test_accuracy, 2)}{balanced} "
            f"on {n_test} held-out samples{val}")


# ------------------------------------------------------------------ static summary

def majority_note(majority_rate: float | None) -> str:
    """' (majority class 62.5 %)', or '' when unknown."""
    return "" if majority_rate is None else f" (majority class {fmt_pct(majority_rate)})"


def baseline_line(majority_rate: float, majority_class: str, n_val: int, metric: str = "accuracy",
                  chance_balanced: float | None = None) -> str:
    """'majority-class rate 0.6250 on 40 validation samples (always answering 'neg'): what a model
    must beat': printed under the CLI's final table. With ``metric="balanced_accuracy"`` the bar
    is that metric's chance level ``chance_balanced`` (1/K), the majority-class rate beside it."""
    if metric == "balanced_accuracy" and chance_balanced:
        return (f"chance balanced accuracy {chance_balanced:.4f} (1/{round(1 / chance_balanced)} classes) on "
                f"{n_val} validation samples: what a model must beat (majority-class rate {majority_rate:.4f}, "
                f"always answering {majority_class!r})")
    return (f"majority-class rate {majority_rate:.4f} on {n_val} validation samples (always answering "
            f"{majority_class!r}): what a model must beat")


def summary_text(s: Snapshot, title: str = "", evaluation: str | None = None,
                 majority_rate: float | None = None, metric: str = "accuracy") -> str:
    """The plain-text fallback: what a terminal or a saved notebook without widgets shows.
    ``evaluation``: the final test line (``test_line``), once the search's pick is evaluated;
    ``majority_rate`` and ``metric``: as for ``tiles``."""
    lines = [f"hpo-nb · {title}".rstrip(" ·"), overall_label(s)]
    lines += [f"{t.label}: {t.value}" + (f" ({t.note.strip()})" if t.note else "")
              for t in tiles(s, majority_rate, metric)]
    lines += [evaluation] if evaluation else []
    lines += [f"! {n}" for n in s.notices]
    lines += [f"{trial_label(t)} {trial_metrics(t)}".rstrip() for t in s.running]
    lines += [finished_line(t) for t in sort_finished(s.finished)]
    return "\n".join(lines)


