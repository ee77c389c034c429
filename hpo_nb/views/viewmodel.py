"""Snapshot in, displayed strings and numbers out: pure functions shared by every renderer."""

from __future__ import annotations

from typing import Any, Mapping

from ..progress import FinishedTrial, RunningTrial, Snapshot


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


def score_label(mode: str) -> str:
    return "Best score (accuracy)" if mode == "simple" else "Best score (accuracy + health)"


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
    state = " · stopping…" if s.stopping and not s.done else " · done" if s.done else ""
    return f"{counts} ({', '.join(details)}){eta}{state}"


def overall_fraction(s: Snapshot) -> float:
    return min(1.0, s.performed / s.total_trials) if s.total_trials else 1.0


def tiles(s: Snapshot) -> dict[str, str]:
    return {
        "Trials performed": f"{s.performed}/{s.total_trials}",
        "Best accuracy": fmt_pct(s.best_accuracy, 2),
        score_label(s.mode): fmt_score(s.best_score),
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
