"""Journey: deploying with docker/ (not built in CI: no Docker engine there, so read as text).

The image runs as the unprivileged user ``botkit`` in ``/app``, which is root's. botkit writes one
thing at run time besides the database: each shown answer's final write, spooled to
``[database] pending_writes_dir`` ("botkit-pending" in the working directory by default) so that a
restart stores it. In ``/app`` the bot could not create that folder, and every answer logged
"could not keep the pending final write". The image must point it at a folder the user owns,
kept on a volume so that it outlives the container.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"


def _dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")


def test_the_image_spools_pending_writes_where_its_user_can_write() -> None:
    text = _dockerfile()
    (user,) = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    env = dict(re.findall(r"(BOTKIT_[A-Z_]+)=(\S+)", text))
    pending = env.get("BOTKIT_DATABASE__PENDING_WRITES_DIR")
    assert pending is not None, "the image leaves pending writes in /app, which its user cannot write"
    state = str(Path(pending).parent)
    runs = " && ".join(re.findall(r"^RUN\s+(.*)$", text, re.MULTILINE))
    assert f"mkdir -p {pending}" in runs
    assert re.search(rf"chown -R {user}\S* {re.escape(state)}", runs), f"{state} is not {user}'s"
    assert re.search(rf"^VOLUME\s+{re.escape(state)}\s*$", text, re.MULTILINE)


def test_compose_keeps_the_bots_state_on_a_volume() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    pending = dict(re.findall(r"(BOTKIT_[A-Z_]+)=(\S+)", _dockerfile()))[
        "BOTKIT_DATABASE__PENDING_WRITES_DIR"
    ]
    mounts = [m.split(":") for m in compose["services"]["bot"].get("volumes", [])]
    assert any(target == str(Path(pending).parent) and name in compose["volumes"] for name, target in mounts)
