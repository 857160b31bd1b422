#!/usr/bin/env bash
# Run the test suite (CPU, two workers). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# two pytest workers on two cores: one thread each avoids oversubscription
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/python -m pytest -n 2 --durations=15 "$@"
