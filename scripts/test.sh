#!/usr/bin/env bash
# Install BGE Studio with its test extras into ./.venv and run the whole test suite:
# lint (ruff), the layering (lint-imports), then pytest, including the real CPU fine-tunes and the
# browser tests.
# Works on a fresh machine: the CPU build of torch first (GPU users: drop the pin), Debian's
# chromium for the browser tests (Playwright drives it; it never downloads a browser).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0 resolves to the CPU wheel on this kind of machine; an unpinned torch pulls CUDA.
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".[test]"

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi

# A real single-machine Slurm (slurm-wlm + munge) for tests/test_cluster_slurm.py. It installs
# packages and starts daemons, so it needs root (or passwordless sudo); without it those tests
# fail and say how to start it.
SLURM_FAILED="test.sh: scripts/local_slurm.sh failed: tests/test_cluster_slurm.py will fail"
if [ "$(id -u)" = 0 ]; then
  bash scripts/local_slurm.sh || echo "$SLURM_FAILED" >&2
elif sudo -n true 2>/dev/null; then
  sudo bash scripts/local_slurm.sh || echo "$SLURM_FAILED" >&2
else
  echo "test.sh: no root, so no local Slurm: tests/test_cluster_slurm.py will fail" \
    "(start it with: sudo bash scripts/local_slurm.sh)" >&2
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The layers of studio/ (pyproject's [tool.importlinter]): a layer imports only from below.
.venv/bin/lint-imports
# Two workers (pytest-xdist), a file each at a time so a module's one real run serves all its
# tests; PYTEST_WORKERS=0 runs everything in this process.
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python -m pytest -q \
  -n "${PYTEST_WORKERS:-2}" --dist loadfile --durations=30 "$@"
