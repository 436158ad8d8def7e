#!/usr/bin/env python3
"""Set up a virtual environment from the lock file, then run the bot or the tests.

    python3 dev.py run      # the bot; without BOT_TOKEN, the local sandbox with its web chat
    python3 dev.py test     # ruff, mypy and the whole test suite
    python3 dev.py setup    # only create/refresh .venv
    python3 dev.py setup --openai-whisper   # also PyTorch (CPU) and openai-whisper, the optional engine

Only the Python standard library is used here, so it works on a machine with nothing but Python and pip.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
LOCK = ROOT / "requirements" / "dev.lock"
STAMP = VENV / ".installed-lock"
WHISPER_REQUIREMENTS = ROOT / "requirements" / "openai-whisper.txt"
WHISPER_STAMP = VENV / ".installed-openai-whisper"
# Pinned on its own, first: where a CPU wheel of it is on hand (pip's find-links), pip takes that; a bare
# "torch" would pull the newest CUDA build (several GB). See requirements/openai-whisper.txt.
TORCH = "torch==2.13.0"


def _run(*args: str | os.PathLike[str], **kwargs: object) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def setup() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is required (this is {sys.version.split()[0]})")
    if not PYTHON.exists():
        print(f"Creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(PYTHON, "-m", "pip", "install", "--quiet", "-r", LOCK)
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "-e", ".")
    STAMP.write_text(wanted)


def setup_openai_whisper() -> None:
    """PyTorch, then openai-whisper and its pinned dependencies without resolution (so nothing replaces
    that torch, and triton, which only serves CUDA, stays out). Never removed by `setup`."""
    setup()
    wanted = hashlib.sha256(
        TORCH.encode() + WHISPER_REQUIREMENTS.read_bytes() + LOCK.read_bytes()
    ).hexdigest()
    if WHISPER_STAMP.exists() and WHISPER_STAMP.read_text().strip() == wanted:
        return
    _run(PYTHON, "-m", "pip", "install", "--quiet", TORCH)
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "-r", WHISPER_REQUIREMENTS)
    check = "import torch, whisper; print('torch', torch.__version__, 'openai-whisper', whisper.__version__)"
    _run(PYTHON, "-c", check)
    WHISPER_STAMP.write_text(wanted)


def run(extra: list[str]) -> int:
    setup()
    return subprocess.call([str(BIN / "cryptouniverse"), "run", *extra], cwd=ROOT)


def test(extra: list[str]) -> int:
    setup()
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "mypy", ".")
    result = subprocess.call([str(PYTHON), "-m", "pytest", *extra], cwd=ROOT)
    return result


def main() -> int:
    command, extra = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("help", [])
    if command == "setup":
        if "--openai-whisper" in extra:
            setup_openai_whisper()
        else:
            setup()
        return 0
    if command == "run":
        return run(extra)
    if command == "test":
        try:
            return test(extra)
        except subprocess.CalledProcessError as exc:
            return exc.returncode or 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
