"""Loggers for slack_sdk and slack-bolt that do not format debug messages nobody will read.

Why: slack_sdk and bolt guard their costlier debug messages with ``logger.level <=
logging.DEBUG`` rather than ``logger.isEnabledFor(logging.DEBUG)``. A logger whose own level is
unset (``NOTSET``, 0: the usual case, the root logger decides) passes that test, so every Web API
call built two f-strings of its whole request and response (the ``json`` body, headers) only for
``logger.debug`` to drop them, and bolt built one per middleware per event: about 40 µs of CPU per
``chat.update`` of a 2,000-character reply (cProfile, ``benchmarks/bench_slack_calls.py``).
Giving the logger an explicit level equal to its effective one changes nothing that is emitted
and makes the guard false. With DEBUG on, the logger is left alone and the messages still come.
"""

from __future__ import annotations

import logging

#: slack_sdk's Web API client logs under this name when it is given no logger.
WEB_CLIENT_LOGGER = "slack_sdk.web.async_base_client"


def settled_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, its level pinned to its effective level unless that is DEBUG.

    Called when the serving clients are built, after botkit set up logging: a level configured
    later on an ancestor is not followed for messages below the pinned level.
    """
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET and not logger.isEnabledFor(logging.DEBUG):
        logger.setLevel(logger.getEffectiveLevel())
    return logger
