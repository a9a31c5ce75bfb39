#!/usr/bin/env bash
# The project's test command (README, CI): sets up .venv once, installs anvil with its test extras,
# checks the generated schema/ and the shipped recipes, then runs pytest. Extra arguments go to pytest,
# e.g. `bash scripts/test.sh -m "not e2e"` to skip the end-to-end tests locally.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# The dashboard's test drives a real headless Chromium (Debian's package): install it where it is missing
# and this machine can (root with apt, as in CI); elsewhere that test says it was skipped and why.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check anvil tests benchmarks scripts
.venv/bin/ruff format --check anvil tests benchmarks scripts
.venv/bin/mypy
.venv/bin/anvil schema --check
.venv/bin/anvil validate anvil.toml recipes/*.toml
.venv/bin/python -m pytest "$@"
