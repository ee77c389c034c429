"""Running a search in the background: ``run()``, ``start()``, ``wait()``, ``stop()``.

The search loop (``search.Search``) runs on a ``background.Background`` thread, so the kernel stays
free while the dashboard follows it; Ctrl+C and the Stop button end it cleanly, recording every
trial. A mixin of ``Experiment``, which opens the study and sets what is declared below.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any, Callable

import optuna

from . import records, trial_memory
from .background import Background
from .errors import ConfigError
from .progress import Notice, ProgressHub, Renderer
from .results import _views
from .search import Search, shown
from .storage import quiet_optuna
from .study import record_budget

if TYPE_CHECKING:
    from .experiment import Experiment

log = logging.getLogger("hpo_nb")


class SearchControl:
    """``run()``, ``start()``, ``wait()``, ``stop()``, ``running``: a search's life in a background thread."""

    study: optuna.Study
    n_trials: int
    mode: str
    concurrency: int
    hub: ProgressHub
    _small_validation: str | None
    _progress_choice: Any
    _renderers: list[Renderer]
    _background: Background | None
    _search: Search | None
    _error: BaseException | None
    _unshown: list[str]  # the finished search's warnings no renderer showed (progress="none"): wait() raises them
    _new_search: Callable[[], Search]  # Experiment's; the others are StudyResults' and TestSplitResults'

    def run(self) -> None:
        """Run the search and block until it ends, showing live progress.

        Ctrl+C (or the dashboard's Stop button) stops it cleanly: running trials end within
        one batch and are recorded as stopped; every completed trial is kept. After Ctrl+C the
        KeyboardInterrupt is raised again once every trial is recorded, so a script ends as an
        interrupted one would (no trial is left RUNNING). Returns None, so a cell ending in
        ``exp.run()`` shows the dashboard and not a repr under it.

        Warns:
            UserWarning: with ``progress="none"``, once, what the search's end would show on the
                dashboard or console (as ``wait()``).

        Raises:
            RuntimeError: the experiment is already running.
            KeyboardInterrupt: Ctrl+C, after the search has stopped and recorded its trials.
            Exception: whatever broke the search itself (e.g. the storage went away); a trial
                that fails is recorded as failed, not raised.
        """
        self.start()
        try:
            self._wait(None)
            self._evaluate_after_run()  # one predict on the test split: the honest number, shown at once
        except KeyboardInterrupt:
            log.warning("interrupted: stopping the search")
            self.stop()
            raise

    def start(self) -> "Experiment":
        """Start the search in a background thread and return at once; the dashboard keeps
        updating while the kernel stays free.

        Returns:
            Experiment: this experiment, so ``exp.start().wait()`` chains.

        Raises:
            RuntimeError: the experiment is already running; call ``wait()`` or ``stop()`` first.
            ConfigError: the executor cannot be created from its options, or the study was searched
                with another max_epochs or search space (new trials would not be comparable).
        """
        if self.running:
            raise RuntimeError("this experiment is already running; call wait() or stop() first.")
        refused = getattr(self, "_incomparable", None)
        if refused is not None:  # reopened with other settings: adding trials would mix them
            raise ConfigError(str(refused), cli=refused.cli)
        self._error = None
        self._unshown = []
        record_budget(self.study, self.n_trials)  # a later reopen without n_trials shows this budget
        self.hub = ProgressHub(self.n_trials, self.mode, self.concurrency)
        self.hub.add_finished(records.finished_trials(self._stored_trials(), shown))
        if self._small_validation:  # on the dashboard (a Python console: the UserWarning has it) and in run.log
            log.warning("dataset %s: %s", self.dataset.name, self._small_validation)
            self.hub.publish(Notice(self._small_validation, warned=True))
        self._search = self._new_search()
        self._attach_renderer()
        search = self._search
        self._background = Background(lambda: self._search_thread(search), "hpo-nb-search").start()
        return self

    def wait(self, timeout: float | None = None) -> "Experiment":
        """Block until the search ends, or ``timeout`` seconds pass.

        Args:
            timeout: seconds to wait at most (>= 0); None: until the search ends.

        Returns:
            Experiment: this experiment.

        Warns:
            UserWarning: with ``progress="none"``, once, what the search's end would show on the
                dashboard or console (every trial failed; the best trial does not beat the
                majority class), as ``"hpo-nb: ..."``.

        Raises:
            Exception: what broke the search, once it has ended (raised once).
        """
        return self._wait(timeout)

    def _wait(self, timeout: float | None) -> "Experiment":
        """``wait()``, its warnings pointing at the caller of ``wait()`` or ``run()``."""
        # Not Thread.join/is_alive: Ctrl+C inside join can make a running thread look ended (background.py).
        if self._background is not None and not self._background.wait(timeout):
            return self
        unshown, self._unshown = getattr(self, "_unshown", []), []
        for message in unshown:  # in the caller's thread, where warnings filters and notebooks see it
            warnings.warn(f"hpo-nb: {message}", UserWarning, stacklevel=3)
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        return self

    def stop(self, wait: bool = True) -> "Experiment":
        """Stop the search: no new trials; running ones end within one batch and are recorded
        as stopped (they do not count toward ``n_trials``). Completed trials stay in storage.

        Args:
            wait: block until the search thread has ended and every running trial is recorded
                (``wait()``; a Ctrl+C meanwhile is absorbed twice, the third is raised); False
                returns at once (what the Stop button does).

        Returns:
            Experiment: this experiment.

        Raises:
            KeyboardInterrupt: a third Ctrl+C while waiting (the search goes on stopping).
            Exception: what broke the search, as ``wait()``.
        """
        if self._search is not None:
            self._search.stop()
        elif not self.hub.snapshot().done:
            self.hub.set_stopping()
        if wait:
            for left in (2, 1, 0):  # Ctrl+C while stopping: keep waiting for the record, twice
                try:
                    self.wait()
                    break
                except KeyboardInterrupt:
                    if not left:
                        raise
                    log.warning("still recording the running trials (they end within one batch); "
                                "interrupt %d more time(s) to stop waiting", left)
        return self

    @property
    def running(self) -> bool:
        """True while a search started by ``run()`` or ``start()`` is going on."""
        return self._background is not None and not self._background.done

    def _search_thread(self, search: Search) -> None:
        try:
            # Optuna at WARNING, experimental warnings off, and cheap collections between this
            # search's trials (trial_memory): for the search only, restored when it ends.
            with quiet_optuna(), trial_memory.search():
                search.run()
        except BaseException as exc:  # surfaced by wait()
            log.exception("search failed")
            self._error = exc
        finally:
            try:  # every trial failed; the best did not beat the majority class
                messages = self._search_warnings()
                for message in messages:
                    log.warning("%s", message)
                    self.hub.publish(Notice(message, closing=True))
                self._unshown = [] if self._renderers else messages  # progress="none": wait() warns
            except Exception:  # the storage went away: what broke the search is the error to show
                log.exception("could not read the finished search back")
            self.hub.close()
            for r in self._renderers:
                close = getattr(r, "close", None)
                if close:
                    close()

    def _attach_renderer(self) -> None:
        choice = self._progress_choice
        renderer = choice if callable(choice) else None if choice == "none" else _views().renderer_for(self, choice)
        self._renderers = []
        if renderer is not None:
            self._renderers = [renderer]
            self.hub.subscribe(renderer, max_hz=5.0)
