#!/usr/bin/env bash
# Creates .venv once and installs tfvr with its pinned dependencies; installs again only when the requirement
# files change. Then builds the deformable-convolution kernel (tfvr/ops/build.py); without a compiler the
# pure-TF path is used and this says so.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
stamp=.venv/.tfvr-installed
want=$(cat requirements.txt requirements-test.txt pyproject.toml | sha256sum | cut -c1-16)
beam_want=$(sha256sum < requirements-beam.txt | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi
# Apache Beam for the `prepare --runner beam` tests, in its own folder (it would downgrade protobuf in .venv).
if [ ! -f .venv/beam-site/.stamp ] || [ "$(cat .venv/beam-site/.stamp)" != "$beam_want" ]; then
  rm -rf .venv/beam-site.tmp
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --target .venv/beam-site.tmp -r requirements-beam.txt
  rm -rf .venv/beam-site && mv .venv/beam-site.tmp .venv/beam-site && echo "$beam_want" > .venv/beam-site/.stamp
fi
if [ -f tfvr/ops/build.py ]; then
  if ! .venv/bin/python -m tfvr.ops.build --quiet; then
    # Under CI a failed kernel build is a failure (its tests would otherwise be skipped and hide it).
    if [ "${CI:-}" = "true" ]; then echo "error: the deformable-conv kernel did not build" >&2; exit 1; fi
    echo "note: deformable-conv kernel not built; tfvr uses the pure-TF path"
  fi
fi
