#!/usr/bin/env bash
# The whole test suite (what CI runs). Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/ops -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export TFVR_BEAM_SITE=${TFVR_BEAM_SITE:-$PWD/.venv/beam-site}  # Apache Beam for the Beam tests only
# Two pytest workers (pytest-xdist), one test file per worker at a time (module fixtures are built once):
# most of the suite is single-threaded Python (tracing, subprocess start-up), so 2 workers use 2 cores.
# TFVR_TEST_WORKERS=0 runs everything in this process (for -x / pdb debugging).
workers=${TFVR_TEST_WORKERS:-2}
if [ "$workers" = "0" ]; then exec .venv/bin/python -m pytest "$@"; fi
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
