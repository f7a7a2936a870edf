"""`botkit run` sets the collector for serving once start-up is done (botkit/gctuning.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from botkit.gctuning import YOUNG_THRESHOLD, tune_for_serving


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_leave_the_scans_and_young_collections_are_spaced_out() -> None:
    gc.unfreeze()
    long_lived = {"settings": [1, 2, 3]}  # e.g. settings, clients, compiled statements
    assert any(o is long_lived for o in gc.get_objects())  # scanned by every collection
    middle, old = gc.get_threshold()[1:]
    tune_for_serving()
    assert not any(o is long_lived for o in gc.get_objects())  # frozen: in no generation
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
    # cycles made afterwards are still collected
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
