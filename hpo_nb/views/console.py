"""Console renderer: rich progress bars in a terminal, plain lines when output is a log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..progress import Snapshot
from ..space import active_params
from . import viewmodel as vm


class ConsoleRenderer:
    """Feed it snapshots (from a hub subscription); it draws overall and per-trial bars, and
    prints each notice (endpoint unreachable, budget reached, a retry, trials awaited in other
    processes) once, as a ``! ...`` line, in a terminal and in a log alike, after the finished-trial
    lines of the same update (a verdict on the search comes after its last trial).

    Args:
        console: where to draw; default: stdout (bars in a terminal, plain lines otherwise).
        closing_notices: print the verdicts on the finished search too (every trial failed, the
            best does not beat the majority class); False when a summary printed after the
            search shows them (``hpo-nb run``), so they are not printed twice.
        warned_notices: print the notices already raised as a Python ``UserWarning`` too (a small
            validation split); False in Python, where the warning shows them, True in ``hpo-nb
            run``, which hides hpo-nb's warnings.
    """

    def __init__(self, console: Console | None = None, closing_notices: bool = True,
                 warned_notices: bool = False) -> None:
        self.console = console or Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120)
        self.live = self.console.is_terminal or self.console.is_jupyter
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
            console=self.console, auto_refresh=False, transient=False,
        )
        self._overall: TaskID | None = None
        self._tasks: dict[int, TaskID] = {}
        self._announced: set[int] = set()
        self._noticed = 0
        self._closing_notices = closing_notices
        self._warned_notices = warned_notices
        self._started = False
        self._last_line = ""

    def __call__(self, snap: Snapshot) -> None:
        """Draw one snapshot.

        Args:
            snap: the hub's latest snapshot.
        """
        self._announce_finished(snap)  # first: a notice may be about the trials just finished
        for notice in snap.notices[self._noticed:]:  # notices only grow
            if ((not self._closing_notices and notice in snap.closing_notices)
                    or (not self._warned_notices and notice in snap.warned_notices)):
                continue
            self.console.print(f"! {notice}", highlight=False, soft_wrap=True, markup=False)
        self._noticed = len(snap.notices)
        if self.live:
            self._draw_bars(snap)
        else:
            line = vm.overall_label(snap)
            if line != self._last_line and (snap.done or len(snap.finished) != len(self._announced) or not self._last_line):
                print(line, file=self.console.file, flush=True)
                self._last_line = line
        if snap.done:
            self.close()

    def _announce_finished(self, snap: Snapshot) -> None:
        for t in snap.finished:
            if t.trial not in self._announced:
                self._announced.add(t.trial)
                if self._started or not self.live:
                    self.console.print(vm.finished_line(t), highlight=False, soft_wrap=True)

    def _draw_bars(self, snap: Snapshot) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        p = self._progress
        if self._overall is None:
            self._overall = p.add_task("Search", total=snap.total_trials, info="")
        p.update(self._overall, completed=snap.performed, total=snap.total_trials,
                 info=vm.overall_label(snap) + self._tiles_text(snap))
        running = {t.trial: t for t in snap.running}
        for trial in list(self._tasks):
            if trial not in running:
                p.remove_task(self._tasks.pop(trial))
        for trial, t in running.items():
            if trial not in self._tasks:
                self._tasks[trial] = p.add_task("", total=1.0, info="")
            p.update(self._tasks[trial], completed=t.overall_fraction, description=vm.trial_label(t),
                     info=vm.trial_metrics(t))
        p.refresh()

    @staticmethod
    def _tiles_text(snap: Snapshot) -> str:
        if snap.best_score is None:
            return ""
        return f" · best acc {vm.fmt_pct(snap.best_accuracy, 2)} · best score {vm.fmt_score(snap.best_score)}"

    def close(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False


def results_table(df: Any, max_rows: int = 30) -> Table:
    """The final results as a rich table (best score first). ``accuracy`` is the validation
    accuracy the search optimized; ``test_accuracy`` (shown once a trial is evaluated) is measured
    on the held-out test split."""
    cols = [c for c in ("number", "state", "accuracy", "balanced_accuracy", "test_accuracy", "score", "health_score", "duration_s",
                        "epochs_run", "param_count")
            if c in df.columns and (c != "test_accuracy" or df[c].notna().any())]
    table = Table(title="hpo-nb results")
    headers = {"accuracy": "val accuracy", "balanced_accuracy": "val balanced acc.", "test_accuracy": "test accuracy"}
    for c in cols:
        table.add_column(headers.get(c, c), justify="right" if c not in ("state",) else "left")
    shown = df.sort_values("score", ascending=False, na_position="last") if "score" in df.columns else df
    for _, row in shown.head(max_rows).iterrows():
        table.add_row(*[_cell(row[c]) for c in cols])
    return table


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if v != v else f"{v:.4f}"
    return str(v)


def evaluation_lines(trial: int, validation_accuracy: float | None, score: float | None,
                     test_accuracy: float | None, n_test: int = 0, metric: str = "accuracy",
                     validation_value: float | None = None, test_balanced: float | None = None) -> list[str]:
    """The final lines under the table: which number is which. ``metric``: what the search
    optimized; ``validation_value``: the trial's validation value of it (for a metric other than
    accuracy); ``test_balanced``: test balanced accuracy, shown with that metric."""
    value = validation_accuracy if metric == "accuracy" else validation_value
    shown = "–" if value is None else f"{value:.4f}"
    lines = [f"best trial {trial}: validation {metric.replace('_', ' ')} {shown} (what the search optimized)"
             + ("" if metric == "accuracy" or validation_accuracy is None
                else f" · validation accuracy {validation_accuracy:.4f}")
             + ("" if score is None or score == value else f" · score {score:.4f}")]
    if test_accuracy is not None:
        balanced = (f", test balanced accuracy {test_balanced:.4f}"
                    if metric == "balanced_accuracy" and test_balanced is not None else "")
        lines.append(f"test accuracy {test_accuracy:.4f}{balanced} on {n_test} held-out samples no trial trained or "
                     "was scored on (the honest estimate)")
    return lines


def best_lines(best: Any, test_accuracy: float | None = None, n_test: int = 0,
               searched: Sequence[str] | None = None, metric: str = "accuracy",
               test_balanced: float | None = None) -> list[str]:
    """The answer under the table: the best trial's accuracies (``metric``: what the search
    optimized; ``test_balanced``: as for ``evaluation_lines``), its hyperparameters (the searched
    ones first when ``searched`` names them, then the fixed ones), its architecture in one line
    and where its model is saved (``best``: a ``TrialResult``)."""
    lines = evaluation_lines(best.number, best.accuracy, best.score, test_accuracy, n_test, metric,
                             (best.extra or {}).get(metric), test_balanced)
    params = active_params(best.params)  # dense_units without dense layers would mislead
    if searched:
        chosen = {k: v for k, v in params.items() if k in searched}
        fixed = {k: v for k, v in params.items() if k not in searched}
        lines.append(f"hyperparameters: {vm.params_line(chosen) or '–'}")
        if fixed:
            lines.append(f"fixed: {vm.params_line(fixed)}")
    else:
        lines.append(f"hyperparameters: {vm.params_line(params) or '–'}")
    if best.architecture:
        lines.append(f"architecture: {vm.arch_summary(best.architecture)}")
    path = best.model_path
    lines.append(f"model: {Path(path).resolve() if path and Path(path).exists() else path or 'not saved'}")
    return lines
