"""The servers some tests need besides botkit's own (PostgreSQL; Redis once tests use it).

On a developer's machine a server that is not running skips its tests, with the reason. Under CI
(``CI`` set to anything but ``""``, ``0``, ``false`` or ``no``, as CI systems and ``.ci/run`` do)
it fails them instead: a green CI run must have run every test, not skipped the PostgreSQL ones.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unreachable(service: str, where: str, err: BaseException) -> NoReturn:
    """Skip the test (fail it under CI) because ``service`` at ``where`` cannot be reached."""
    reason = f"{service} unreachable at {where}: {err!r}"
    if under_ci():
        message = f"{reason}; CI is set, so this fails instead of skipping (start {service})"
        raise pytest.fail.Exception(message, pytrace=False) from None
    pytest.skip(reason)
