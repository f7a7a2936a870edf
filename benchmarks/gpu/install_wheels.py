"""On the GPU machine: install the carried wheels (``.whl/``) into /tmp/bksite, keeping only what
the image and the vLLM bundle (/tmp/site) lack, so there is one version of each package.

usage: python3 benchmarks/gpu/install_wheels.py WHEEL_DIR [TARGET]
Prints what it kept and what the image already had; exits 1 if botkit's run path does not import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ALWAYS = {
    "botkit",
    "botkit_slack",
    "botkit_discord",
    "botkit_console",
}  # this checkout's, for its entry points


def importable(module: str) -> bool:
    env = {**os.environ, "PYTHONPATH": "/tmp/site"}
    return (
        subprocess.run([sys.executable, "-c", f"import {module}"], env=env, capture_output=True).returncode
        == 0
    )


def main() -> int:
    wheels = Path(sys.argv[1])
    target = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/bksite")
    stage = Path("/tmp/bkstage")
    shutil.rmtree(stage, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(stage),
         *map(str, sorted(wheels.glob("*.whl")))],
        check=True,
    )  # fmt: skip
    kept, had = [], []
    for entry in sorted(stage.iterdir()):
        name = entry.name
        if name.endswith((".dist-info", ".data")) or name == "bin" or name.startswith("_"):
            continue
        module = name.removesuffix(".py")
        if module not in ALWAYS and importable(module):
            had.append(module)
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        else:
            kept.append(module)
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(stage), str(target))
    print("kept:", " ".join(kept))
    print("the image has:", " ".join(had))
    env = {**os.environ, "PYTHONPATH": f"{os.getcwd()}:{os.getcwd()}/adapters:{target}:/tmp/site"}
    check = "import botkit.cli, botkit_slack, botkit.llm.client, botkit.store.store; print('botkit imports')"
    return subprocess.run([sys.executable, "-c", check], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
