#!/usr/bin/env bash
# GPU check of tfvr's DCN kernels and EDVR in float32 / bfloat16 / float16, writing ONE JSON of figures.
#
#   bash scripts/gpu_check.sh              # on a GPU machine (budget: < 8 min on one H200)
#   bash scripts/gpu_check.sh --cpu-only   # dry run here: the same steps on the CPU with tiny sizes
#
# Steps: (1) build the kernel library with CUDA (`python -m tfvr.ops.build --cuda --force`; CPU build in the dry
# run), (2) the kernel parity / gradient tests (tests/ops/test_deform_conv_kernel.py, test_deform_conv_precision.py)
# with every test wrapped in `tf.device($TFVR_TEST_DEVICE)` = /GPU:0, against the pure-TF reference on the same
# device, (3) bench/deform_conv.py and (4) bench/edvr.py (forward, float32 / bfloat16 / float16, kernel and
# reference). Output: $OUT/gpu_check.json when $OUT is set, else ./gpu_check.json (written atomically), with
# every step's status, duration and figures; the exit status is non-zero when a step failed.
#
# Python: the repository's .venv (carried to the device machine with the working tree; the machine has no
# internet, so nothing is installed here). Without it the script says what is missing and stops.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
CPU_ONLY=0
[ "${1:-}" = "--cpu-only" ] && CPU_ONLY=1
PY=${TFVR_PYTHON:-$ROOT/.venv/bin/python}
DEST=${OUT:-$ROOT}/gpu_check.json
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tfvr-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export PYTHONPATH=$ROOT TF_CPP_MIN_LOG_LEVEL=2
# the golden torchvision fixtures (tests/helpers.golden): shared/ in the tree copied to the device, else ../shared
if [ -z "${TFVR_SHARED:-}" ]; then
  for d in "$ROOT/shared" "$ROOT/../shared" /work/shared; do [ -d "$d/golden" ] && { export TFVR_SHARED=$d; break; }; done
fi

if [ ! -x "$PY" ]; then
  echo "gpu_check: no Python at $PY. Create the venv first (bash scripts/venv.sh, needs PyPI) or carry .venv" \
       "with the working tree (run(carry=['.venv'])), or set TFVR_PYTHON." >&2
  exit 2
fi
if ! "$PY" -c "import tensorflow, keras, numpy, pytest" 2>"$WORK/import.err"; then
  echo "gpu_check: $PY cannot import tensorflow/keras/numpy/pytest: $(tail -1 "$WORK/import.err")" >&2
  exit 2
fi
if [ $CPU_ONLY = 1 ]; then
  export CUDA_VISIBLE_DEVICES=""
  DEVICE=/CPU:0; EDVR_CASES=fwd64; DCN_SIZE=24x40; REPEATS=1
else
  DEVICE=/GPU:0; EDVR_CASES=fwd64,fwd180; DCN_SIZE=180x320; REPEATS=5
  if ! "$PY" -c "import tensorflow as tf, sys; sys.exit(0 if tf.config.list_physical_devices('GPU') else 1)"; then
    echo "gpu_check: TensorFlow sees no GPU (nvidia-smi: $(nvidia-smi -L 2>&1 | head -1)); use --cpu-only for a dry run" >&2
    exit 2
  fi
fi

STEPS="$WORK/steps.jsonl"
: > "$STEPS"
step() {  # step NAME TIMEOUT_S CMD... : runs CMD, logs to $WORK/NAME.log, appends {name, rc, seconds}
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s.%N)
  echo "== $name: $*"
  timeout "$limit" "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  local t1=$(date +%s.%N)
  tail -n 25 "$WORK/$name.log"
  "$PY" - "$name" "$rc" "$t0" "$t1" "$WORK/$name.log" >> "$STEPS" <<'PYEOF'
import json, sys
name, rc, t0, t1, log = sys.argv[1:]
tail = open(log, errors="replace").read().splitlines()[-40:]
print(json.dumps({"name": name, "rc": int(rc), "seconds": round(float(t1) - float(t0), 1), "log_tail": tail}))
PYEOF
  return $rc
}

if [ $CPU_ONLY = 1 ]; then
  step build 600 "$PY" -m tfvr.ops.build --quiet
else
  step build 600 "$PY" -m tfvr.ops.build --cuda --force
fi
TFVR_TEST_DEVICE=$DEVICE step tests 900 "$PY" -m pytest -q -x -p no:cacheprovider \
  --junitxml="$WORK/tests.xml" tests/ops/test_deform_conv_kernel.py tests/ops/test_deform_conv_precision.py
step deform_conv 600 "$PY" bench/deform_conv.py --size "$DCN_SIZE" --repeats "$REPEATS" --no-peer --no-xla \
  --dtypes float32,bfloat16,float16 --json "$WORK/deform_conv.json"
step edvr 900 "$PY" bench/edvr.py --impls kernel,reference --cases "$EDVR_CASES" --repeats "$REPEATS" --no-peer \
  --dtypes float32,bfloat16,float16 --json "$WORK/edvr.json"

"$PY" - "$WORK" "$DEST" "$CPU_ONLY" "$DEVICE" <<'PYEOF'
import json, os, platform, subprocess, sys, time
import xml.etree.ElementTree as ET
work, dest, cpu_only, device = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
steps = [json.loads(l) for l in open(os.path.join(work, "steps.jsonl")) if l.strip()]
out = {"cpu_only": cpu_only, "device": device, "host": platform.node(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "load": os.getloadavg(), "cpu_count": os.cpu_count(), "steps": steps}
try:
    out["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20).stdout.strip()
except Exception as e:  # noqa: BLE001
    out["gpu"] = f"nvidia-smi unavailable: {e}"
xml = os.path.join(work, "tests.xml")
if os.path.exists(xml):
    suite = ET.parse(xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    out["tests"] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    out["tests"]["seconds"] = float(suite.get("time", 0))
for name in ("deform_conv", "edvr"):
    p = os.path.join(work, name + ".json")
    out[name] = json.load(open(p)) if os.path.exists(p) else None
os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
with open(dest + ".tmp", "w") as f:
    json.dump(out, f, indent=1)
os.replace(dest + ".tmp", dest)
failed = [s["name"] for s in steps if s["rc"]]
print(f"gpu_check: wrote {dest}; steps failed: {failed or 'none'}")
sys.exit(1 if failed else 0)
PYEOF
