"""slack_sdk / bolt loggers pinned so that their ``logger.level <= DEBUG`` guards are false."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from botkit_slack.sdklogging import settled_logger


@pytest.fixture
def fresh_name() -> Iterator[str]:
    name = "botkit.tests.sdklogging.child"
    logger = logging.getLogger(name)
    parent = logging.getLogger("botkit.tests.sdklogging")
    saved = (logger.level, parent.level)
    yield name
    logger.setLevel(saved[0])
    parent.setLevel(saved[1])


def test_pinned_to_the_effective_level_when_debug_is_off(fresh_name: str) -> None:
    logging.getLogger("botkit.tests.sdklogging").setLevel(logging.INFO)
    logger = settled_logger(fresh_name)
    assert logger.level == logging.INFO
    assert not logger.level <= logging.DEBUG  # the libraries' guard: no debug strings built
    assert logger.isEnabledFor(logging.INFO) and not logger.isEnabledFor(logging.DEBUG)


def test_left_alone_when_debug_is_on(fresh_name: str) -> None:
    logging.getLogger("botkit.tests.sdklogging").setLevel(logging.DEBUG)
    logger = settled_logger(fresh_name)
    assert logger.level == logging.NOTSET
    assert logger.isEnabledFor(logging.DEBUG)


def test_an_explicit_level_is_kept(fresh_name: str) -> None:
    logging.getLogger("botkit.tests.sdklogging").setLevel(logging.INFO)
    logging.getLogger(fresh_name).setLevel(logging.WARNING)
    assert settled_logger(fresh_name).level == logging.WARNING
