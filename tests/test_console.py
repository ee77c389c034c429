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
