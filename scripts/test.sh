#!/usr/bin/env bash
# Run the test suite (CPU, two workers). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest -n 2 --durations=15 "$@"
