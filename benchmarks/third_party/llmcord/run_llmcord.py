"""Run the vendored, unchanged ``llmcord.py`` against a fake Discord and an OpenAI-compatible server.

    python benchmarks/third_party/llmcord/run_llmcord.py --api-url URL --gateway-url URL \\
        --token TOKEN --base-url http://127.0.0.1:PORT/v1 --model MODEL --workdir DIR

llmcord reads ``config.yaml`` from its working directory when imported and runs its bot at
import (``asyncio.run(main())``), so this writes the config into ``--workdir``, points discord.py
at the fake (the two process-wide class attributes botkit's adapter sets too:
``botkit_discord.endpoints.point_discord_py_at``) and runs the module there with :mod:`runpy`.
"""

from __future__ import annotations

import argparse
import os
import runpy
from pathlib import Path

import discord.gateway
import discord.http
import yaml
import yarl

HERE = Path(__file__).resolve().parent


def config(token: str, base_url: str, model: str) -> dict[str, object]:
    """llmcord's config.yaml: its shipped defaults, one provider (the stand-in), no system prompt."""
    return {
        "bot_token": token,
        "client_id": None,
        "status_message": None,
        "max_text": 100000,
        "max_images": 5,
        "max_messages": 25,
        "use_plain_responses": False,
        "allow_dms": True,
        "permissions": {
            "users": {"admin_ids": [], "allowed_ids": [], "blocked_ids": []},
            "roles": {"allowed_ids": [], "blocked_ids": []},
            "channels": {"allowed_ids": [], "blocked_ids": []},
        },
        "providers": {"standin": {"base_url": base_url}},
        "models": {f"standin/{model}": None},
        "system_prompt": None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--api-url", "--gateway-url", "--token", "--base-url", "--model", "--workdir"):
        parser.add_argument(name, required=True)
    ns = parser.parse_args()
    workdir = Path(ns.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config(ns.token, ns.base_url, ns.model)))
    discord.http.Route.BASE = ns.api_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(ns.gateway_url)
    os.chdir(workdir)
    runpy.run_path(str(HERE / "llmcord.py"), run_name="__main__")


if __name__ == "__main__":
    main()
