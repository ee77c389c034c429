"""The console renderer (CLI, scripts) prints notices: endpoint unreachable, budget, retries,
trials awaited in other processes. Each once, in a terminal (bars) and in a log (plain lines)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from hpo_nb.progress import Notice, ProgressHub, TrialStarted
from hpo_nb.views.console import ConsoleRenderer

NOTICES = ["RunPod endpoint unreachable (ConnectionError): running trials locally instead.",
           "RunPod budget of $1.00 reached (spent $1.01): no new trials.",
           "trial 3: RunPod job failed (CUDA error); retry 1 of 2.",
           "waiting for 2 trial(s) running in other processes"]


@pytest.mark.parametrize("terminal", [False, True])
def test_every_notice_is_printed_once(terminal):
    out = io.StringIO()
    renderer = ConsoleRenderer(Console(file=out, force_terminal=terminal, width=200))
    hub = ProgressHub(4, "simple", 2)
    hub.publish(TrialStarted(0, 2, {"filters": 8}))
    hub.publish(Notice(NOTICES[0]))
    renderer(hub.snapshot())
    renderer(hub.snapshot())  # nothing new: printed once
    for message in NOTICES[1:]:
        hub.publish(Notice(message))
    hub.close()
    renderer(hub.snapshot())
    text = out.getvalue()
    for message in NOTICES:
        assert text.count(f"! {message}") == 1, text


@pytest.mark.parametrize("terminal", [False, True])
def test_closing_verdicts_are_left_to_a_summary_that_prints_them(terminal):
    """``hpo-nb run`` prints the verdicts on the finished search (the best does not beat the
    majority class, every trial failed) in its summary; its live bars must not print them too.
    A script's own console renderer (no summary) still prints them, once."""
    verdict = "the best trial's validation accuracy 0.0500 does not beat the majority-class rate 0.1010"
    texts = {}
    for closing in (True, False):
        out = io.StringIO()
        renderer = ConsoleRenderer(Console(file=out, force_terminal=terminal, width=200), closing_notices=closing)
        hub = ProgressHub(1, "simple", 1)
        hub.publish(Notice(NOTICES[1]))
        renderer(hub.snapshot())
        hub.publish(Notice(verdict, closing=True))
        renderer(hub.snapshot())  # before close: the verdict may arrive in a snapshot of its own
        hub.close()
        renderer(hub.snapshot())
        texts[closing] = out.getvalue()
    assert texts[True].count(verdict) == 1 and texts[True].count(NOTICES[1]) == 1
    assert verdict not in texts[False] and texts[False].count(NOTICES[1]) == 1


@pytest.mark.parametrize("terminal", [False, True])
def test_a_verdict_comes_after_the_finished_trial_lines_of_the_same_update(terminal):
    """The last trial's line and the verdict on the search often land in one snapshot: the
    trial's line first, so "! the best trial ... does not beat ..." follows the trial it is about."""
    from hpo_nb.progress import TrialFinished

    verdict = "the best trial's validation accuracy 0.0500 does not beat the majority-class rate 0.1010"
    out = io.StringIO()
    renderer = ConsoleRenderer(Console(file=out, force_terminal=terminal, width=200))
    hub = ProgressHub(1, "simple", 1)
    hub.publish(TrialStarted(0, 2, {"filters": 8}))
    renderer(hub.snapshot())
    hub.publish(TrialFinished(0, "complete", accuracy=0.05, score=0.05, duration_s=1.0))
    hub.publish(Notice(verdict, closing=True))
    hub.close()
    renderer(hub.snapshot())
    text = out.getvalue()
    assert text.count("Trial 0 complete") == 1 and text.count(verdict) == 1, text
    assert text.index("Trial 0 complete") < text.index(verdict), text


def test_a_notice_already_raised_as_a_warning_is_printed_only_where_warnings_are_hidden():
    """A small validation split is a Python UserWarning; the console of the same script does not
    print it again, ``hpo-nb run`` (which hides hpo-nb's warnings) prints it once."""
    small = "the validation split has only 9 samples"
    texts = {}
    for warned in (False, True):
        out = io.StringIO()
        renderer = ConsoleRenderer(Console(file=out, width=200), warned_notices=warned)
        hub = ProgressHub(1, "simple", 1)
        hub.publish(Notice(small, warned=True))
        hub.publish(Notice(NOTICES[0]))
        hub.close()
        renderer(hub.snapshot())
        texts[warned] = out.getvalue()
    assert small not in texts[False] and texts[False].count(NOTICES[0]) == 1
    assert texts[True].count(f"! {small}") == 1
