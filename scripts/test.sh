#!/usr/bin/env bash
# The whole test suite (what CI runs). Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/ops -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export TFVR_BEAM_SITE=${TFVR_BEAM_SITE:-$PWD/.venv/beam-site}  # Apache Beam for the Beam tests only
exec .venv/bin/python -m pytest "$@"
