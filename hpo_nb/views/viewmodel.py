"""Snapshot in, displayed strings and numbers out: pure functions shared by every renderer."""

from __future__ import annotations

from typing import Any, Mapping

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
    """'Trial 7 · epoch 4/10 · 74 %' (or the queue state of a remote trial)."""
    if t.status != "running":
        where = f" · {t.where}" if t.where and t.where != "local" else ""
        return f"Trial {t.trial} · {t.status.replace('_', ' ')}{where}"
    if t.epoch == 0:
        return f"Trial {t.trial} · starting"
    return f"Trial {t.trial} · epoch {t.epoch}/{t.total_epochs} · {int(100 * t.epoch_fraction)} %"


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


def overall_label(s: Snapshot) -> str:
    counts = f"{s.performed}/{s.total_trials} trials"
    details = [f"{len(s.running)} running", f"{s.completed} complete", f"{s.pruned} pruned", f"{s.failed} failed"]
    if s.stopped:
        details.append(f"{s.stopped} stopped")
    eta = "" if s.done else f" · ETA {fmt_duration(s.eta_s)}"
    cost = remote_cost_usd(s)
    spent = "" if cost is None else f" · RunPod {fmt_usd(cost)}"
    state = " · stopping…" if s.stopping and not s.done else " · done" if s.done else ""
    return f"{counts} ({', '.join(details)}){eta}{spent}{state}"


def remote_cost_usd(s: Snapshot) -> float | None:
    """What finished RunPod trials cost (failed attempts included); None when none ran there."""
    costs = [float(t.extra["cost_usd"]) for t in s.finished if isinstance(t.extra.get("cost_usd"), (int, float))]
    return sum(costs) if costs else None


def fmt_usd(value: float) -> str:
    """'$0.0264' for the cents a trial costs, '$12.40' once it adds up."""
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def overall_fraction(s: Snapshot) -> float:
    return min(1.0, s.performed / s.total_trials) if s.total_trials else 1.0


def tiles(s: Snapshot, majority_rate: float | None = None, metric: str = "accuracy") -> dict[str, str]:
    """The four summary tiles. ``majority_rate``: the validation accuracy of always answering the
    most common class, shown beside the best accuracy (what a model must beat); ``metric``: what
    the score is made of (``Experiment(metric=)``)."""
    return {
        "Trials performed": f"{s.performed}/{s.total_trials}",
        "Best accuracy": fmt_pct(s.best_accuracy, 2) + majority_note(majority_rate),
        score_label(s.mode, metric): fmt_score(s.best_score),
        "Mean duration per trial": fmt_duration(s.mean_duration_s),
    }


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
# views/dashboard.py only copies these values into widgets.

HEALTH_SHORT = health.SHORT

# Gallery orders: label -> (FinishedTrial field, descending). Missing values always sort last.
SORTS: dict[str, tuple[str, bool]] = {
    "score ↓": ("score", True),
    "accuracy ↓": ("accuracy", True),
    "trial #": ("trial", False),
    "duration ↑": ("duration_s", False),
}


fmt_value = short_value  # a parameter value, short: 0.0031 -> '3.1e-03', 0.25 -> '0.25', True -> 'yes'


def params_line(params: Mapping[str, Any]) -> str:
    """'batch_size=64 · learning_rate=3.1e-03 · optimizer=adam' (keys sorted)."""
    return " · ".join(f"{k}={fmt_value(v)}" for k, v in sorted(params.items()))


def health_line(health: Mapping[str, float]) -> str:
    """'grad 1.00 · dead 0.02 · …' in a fixed order; empty when the trial has no health metrics."""
    return " · ".join(f"{short} {health[k]:.2f}" for k, short in HEALTH_SHORT.items()
                      if isinstance(health.get(k), (int, float)))


def running_rows(s: Snapshot, slots: int) -> tuple[list[tuple[str, str, float]], str]:
    """(label, metrics, bar fraction) for the first ``slots`` running trials, and a note for the rest.
    The bar shows the trial's whole epoch budget, so it moves within each epoch too."""
    rows = [(trial_label(t), trial_metrics(t), t.overall_fraction) for t in s.running[:slots]]
    rest = len(s.running) - slots
    return rows, (f"+{rest} more running" if rest > 0 else "")


def sort_finished(trials: tuple[FinishedTrial, ...] | list[FinishedTrial], sort: str) -> list[FinishedTrial]:
    key, descending = SORTS.get(sort, SORTS["score ↓"])

    def order(t: FinishedTrial) -> tuple[int, float]:
        v = getattr(t, key)
        if v is None:
            return (1, 0.0)
        return (0, -float(v) if descending else float(v))

    return sorted(trials, key=lambda t: (*order(t), t.trial))


GALLERY_COLUMNS = ("Trial", "State", "Params", "Accuracy", "Score", "Health", "Duration", "Architecture")


def gallery_rows(s: Snapshot, sort: str = "score ↓") -> list[dict[str, str]]:
    """One row of display strings per finished trial, in the chosen order."""
    rows = []
    for t in sort_finished(s.finished, sort):
        rows.append({
            "Trial": str(t.trial),
            "State": t.state,
            "Params": params_line(t.params),
            "Accuracy": fmt_pct(t.accuracy, 2),
            "Score": fmt_score(t.score),
            "Health": health_line(t.health),
            "Duration": fmt_duration(t.duration_s),
            "Architecture": arch_summary(t.architecture) or (t.error or ""),
        })
    return rows


def trial_option(t: FinishedTrial) -> str:
    """The trial picker's entry: 'Trial 3 · complete · score 0.9123'."""
    return f"Trial {t.trial} · {t.state} · score {fmt_score(t.score)}"


def stop_button(s: Snapshot) -> tuple[str, bool]:
    """(description, disabled) of the Stop button."""
    if s.done:
        return ("Stopped" if s.stopping else "Finished", True)
    if s.stopping:
        return ("Stopping…", True)
    return ("Stop search", False)


# ------------------------------------------------------------------ HTML pieces

def _esc(text: Any) -> str:
    import html

    return html.escape(str(text), quote=True)


_STATE_COLOURS = {"complete": "#2e7d32", "pruned": "#8d6e00", "stopped": "#616161", "failed": "#c62828"}


def tile_html(label: str, value: str) -> str:
    return (f'<div style="padding:6px 14px;border:1px solid #ddd;border-radius:6px;min-width:150px;line-height:1.35">'
            f'<div style="font-size:11px;color:#666">{_esc(label)}</div>'
            f'<div style="font-size:20px;font-weight:600">{_esc(value)}</div></div>')


def notices_html(notices: tuple[str, ...] | list[str]) -> str:
    return "".join(f'<div style="background:#fff4e5;border-left:4px solid #ff9800;padding:4px 8px;'
                   f'margin:2px 0">{_esc(n)}</div>' for n in notices)


def gallery_html(rows: list[dict[str, str]]) -> str:
    if not rows:
        return '<div style="color:#666;padding:4px;line-height:1.35">No finished trials yet.</div>'
    head = "".join(f'<th style="text-align:left;padding:2px 8px">{c}</th>' for c in GALLERY_COLUMNS)
    body = []
    for r in rows:
        colour = _STATE_COLOURS.get(r["State"], "#000")
        cells = []
        for c in GALLERY_COLUMNS:
            style = "padding:2px 8px;vertical-align:top"
            if c == "State":
                style += f";color:{colour};font-weight:600"
            if c in ("Params", "Health", "Architecture"):
                style += ";font-size:11px"
            cells.append(f'<td style="{style}">{_esc(r[c])}</td>')
        body.append(f'<tr class="hpo-row" data-trial="{_esc(r["Trial"])}">{"".join(cells)}</tr>')
    return ('<table class="hpo-gallery" style="border-collapse:collapse;font-size:12px;line-height:1.35">'
            f'<thead><tr style="border-bottom:1px solid #ccc">{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def details_html(t: FinishedTrial | None) -> str:
    """Everything stored about one finished trial: metrics, health, params, layers."""
    if t is None:
        return '<div style="color:#666">Pick a trial to see its details.</div>'
    parts = [f'<div><b>Trial {t.trial}</b> · <span style="color:{_STATE_COLOURS.get(t.state, "#000")}">'
             f'{_esc(t.state)}</span> · accuracy {_esc(fmt_pct(t.accuracy, 2))} · score {_esc(fmt_score(t.score))}'
             f' · {_esc(fmt_duration(t.duration_s))}</div>']
    if t.error:
        parts.append(f'<div style="color:#c62828">{_esc(t.error)}</div>')
    blocks = []
    if t.params:
        blocks.append(_kv_table("Hyperparameters", {k: fmt_value(v) for k, v in sorted(t.params.items())}))
    if t.health:
        blocks.append(_kv_table("Health", {k: f"{v:.3f}" for k, v in t.health.items()
                                          if isinstance(v, (int, float))}))
    layers = t.architecture.get("layers") or []
    if layers:
        head = "".join(f'<th style="text-align:left;padding:1px 6px">{c}</th>'
                       for c in ("Layer", "Type", "Output", "Params", "Activation"))
        body = "".join(
            "<tr>" + "".join(f'<td style="padding:1px 6px">{_esc(v)}</td>' for v in (
                layer.get("name", ""), layer.get("type", ""), _shape_text(layer.get("output_shape")),
                fmt_count(layer.get("params") or 0), layer.get("activation") or "")) + "</tr>"
            for layer in layers)
        blocks.append(f'<div style="margin-top:4px"><b>Architecture</b> · {_esc(arch_summary(t.architecture))}'
                      f'<table style="font-size:11px;border-collapse:collapse"><tr>{head}</tr>{body}</table></div>')
    parts.append(f'<div style="display:flex;gap:28px;align-items:flex-start;flex-wrap:wrap">{"".join(blocks)}</div>')
    return f'<div class="hpo-details" style="font-size:12px;line-height:1.35">{"".join(parts)}</div>'


def _kv_table(title: str, values: Mapping[str, str]) -> str:
    rows = "".join(f'<tr><td style="padding:1px 6px;color:#555">{_esc(k)}</td>'
                   f'<td style="padding:1px 6px">{_esc(v)}</td></tr>' for k, v in values.items())
    return (f'<div style="margin-top:4px"><b>{_esc(title)}</b>'
            f'<table style="font-size:11px;border-collapse:collapse">{rows}</table></div>')


def _shape_text(shape: Any) -> str:
    if isinstance(shape, (list, tuple)):
        return "×".join("?" if d is None else str(d) for d in shape)
    return "" if shape is None else str(shape)


# ------------------------------------------------------------------ final test evaluation

def test_line(trial: int, test_accuracy: float, validation_accuracy: float | None, n_test: int) -> str:
    """'Test accuracy of trial 3 (the search's pick): 96.10 % on 359 held-out samples · validation
    97.20 % (what the search optimized)': the honest number beside the optimistic one."""
    val = "" if validation_accuracy is None else \
        f" · validation {fmt_pct(validation_accuracy, 2)} (what the search optimized)"
    return (f"Test accuracy of trial {trial} (the search's pick): {fmt_pct(test_accuracy, 2)} "
            f"on {n_test} held-out samples{val}")


def test_html(line: str | None) -> str:
    if not line:
        return ""
    return (f'<div class="hpo-test" style="padding:4px 8px;margin:4px 0;border-left:4px solid #2e7d32;'
            f'background:#f1f8e9">{_esc(line)}</div>')


# ------------------------------------------------------------------ static summary

def majority_note(majority_rate: float | None) -> str:
    """' (majority class 62.5 %)', or '' when unknown."""
    return "" if majority_rate is None else f" (majority class {fmt_pct(majority_rate)})"


def baseline_line(majority_rate: float, majority_class: str, n_val: int) -> str:
    """'majority-class rate 0.6250 on 40 validation samples (always answering 'neg'): what a model
    must beat': printed under the CLI's final table."""
    return (f"majority-class rate {majority_rate:.4f} on {n_val} validation samples (always answering "
            f"{majority_class!r}): what a model must beat")


def summary_text(s: Snapshot, title: str = "", evaluation: str | None = None,
                 majority_rate: float | None = None, metric: str = "accuracy") -> str:
    """The plain-text fallback: what a terminal or a saved notebook without widgets shows.
    ``evaluation``: the final test line (``test_line``), once the search's pick is evaluated;
    ``majority_rate`` and ``metric``: as for ``tiles``."""
    lines = [f"hpo-nb · {title}".rstrip(" ·"), overall_label(s)]
    lines += [f"{k}: {v}" for k, v in tiles(s, majority_rate, metric).items()]
    lines += [evaluation] if evaluation else []
    lines += [f"! {n}" for n in s.notices]
    lines += [f"{trial_label(t)} {trial_metrics(t)}".rstrip() for t in s.running]
    lines += [finished_line(t) for t in sort_finished(s.finished, "score ↓")]
    return "\n".join(lines)


def summary_html(s: Snapshot, title: str = "", evaluation: str | None = None,
                 majority_rate: float | None = None, metric: str = "accuracy") -> str:
    """The HTML fallback shown where widgets cannot render (nbconvert offline, GitHub);
    ``evaluation``, ``majority_rate`` and ``metric`` as for ``summary_text``."""
    pct = int(round(100 * overall_fraction(s)))
    bar = (f'<div style="background:#eee;width:420px;height:10px;border-radius:5px">'
           f'<div style="background:#1976d2;width:{pct}%;height:10px;border-radius:5px"></div></div>')
    tiles_row = "".join(tile_html(k, v) for k, v in tiles(s, majority_rate, metric).items())
    running = "".join(f"<div>{_esc(trial_label(t))} <span style='color:#666'>{_esc(trial_metrics(t))}</span></div>"
                      for t in s.running)
    return (f'<div class="hpo-summary" style="font-family:sans-serif;font-size:13px;line-height:1.35">'
            f'<div><b>hpo-nb</b> · {_esc(title)}</div>{notices_html(s.notices)}'
            f'<div style="margin:4px 0">{bar}<div>{_esc(overall_label(s))}</div></div>'
            f'<div style="display:flex;gap:8px;margin:6px 0;flex-wrap:wrap">{tiles_row}</div>'
            f'{test_html(evaluation)}{running}'
            f'{gallery_html(gallery_rows(s))}</div>')
