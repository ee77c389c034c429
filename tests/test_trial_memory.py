"""The search-scoped gc freeze: cheap collections during a search, nothing frozen after it."""

from __future__ import annotations

import gc
import weakref
from typing import Iterator

import pytest

from hpo_nb import trial_memory


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


@pytest.fixture(autouse=True)
def no_automatic_collection() -> Iterator[None]:
    """Keep Python's own collections from freeing the test's cycles at random moments."""
    assert gc.get_freeze_count() == 0
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def _garbage_cycle() -> weakref.ref:
    return weakref.ref(_Node())


def test_a_search_freezes_the_process_and_unfreezes_it_when_it_ends():
    with trial_memory.search():
        assert trial_memory.frozen() and gc.get_freeze_count() > 0
    assert not trial_memory.frozen() and gc.get_freeze_count() == 0


def test_garbage_a_trial_leaves_is_collected_during_the_search():
    with trial_memory.search():
        first, later = _garbage_cycle(), None
        trial_memory.collect_after_trial()  # the first trial's collection, then a second freeze
        later = _garbage_cycle()
        trial_memory.collect_after_trial()
        assert first() is None and later() is None


def test_garbage_from_before_the_search_is_collected_after_it():
    before = _garbage_cycle()
    with trial_memory.search():
        trial_memory.collect_after_trial()
        assert before() is not None  # frozen: the collector does not walk it during the search
    gc.collect()
    assert before() is None


def test_someone_elses_freeze_is_left_alone():
    gc.freeze()
    frozen = gc.get_freeze_count()
    with trial_memory.search():
        assert not trial_memory.frozen()
        trial_memory.collect_after_trial()
    assert gc.get_freeze_count() == frozen  # neither extended nor undone


def test_concurrent_searches_unfreeze_when_the_last_one_ends():
    trial_memory.begin_search()
    trial_memory.begin_search()
    trial_memory.end_search()
    assert trial_memory.frozen()
    trial_memory.end_search()
    assert not trial_memory.frozen() and gc.get_freeze_count() == 0
