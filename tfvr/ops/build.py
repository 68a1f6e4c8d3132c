"""Builds tfvr's deformable-convolution kernel: `python -m tfvr.ops.build [--quiet] [--cuda] [--force]`.

Compiles `tfvr/ops/cc/*.cc` against the installed TensorFlow (`tf.sysconfig` flags) into
`tfvr/ops/_deform_conv_ops.so` (gitignored), where `tfvr.ops.deform_conv` looks for it. With `--cuda` the CUDA
kernels (`deform_conv_kernels.cu.cc`) are compiled with nvcc too and linked in; the library then carries CPU and GPU
kernels. Skips the work when the library is newer than its sources, it was built against the installed TensorFlow version and a build
with CUDA is not being asked of a CPU-only library. Exit status 1 (with the compiler's message) when the build fails;
tfvr then falls back to the pure-TF path.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "cc"
CPU_SOURCES = [SRC / "deform_conv_ops.cc", SRC / "winograd_ops.cc"]
CUDA_SOURCES = [SRC / "deform_conv_kernels.cu.cc"]
HEADERS = [SRC / "deform_conv.h", SRC / "tf_op_common.h"]
LIBRARY = HERE / "_deform_conv_ops.so"
STAMP = HERE / "_deform_conv_ops.so.stamp"  # what the library was built with: "tensorflow==X cpu|cuda"
CUDA_HOME = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda"))
# GPU architectures compiled ahead of time (SASS) with PTX of the newest for later GPUs: Turing, Ampere, Ada,
# Hopper (H100/H200 = 90). Override with TFVR_CUDA_ARCHS="80;90".
DEFAULT_CUDA_ARCHS = "75;80;89;90"


def tf_flags() -> tuple[list[str], list[str]]:
    """tf.sysconfig's compile and link flags, from a child process (keeps TensorFlow's start-up logs out)."""
    code = (
        "import json, tensorflow as tf; "
        "print(json.dumps([tf.sysconfig.get_compile_flags(), tf.sysconfig.get_link_flags()]))"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"cannot import tensorflow to read its build flags:\n{r.stderr[-2000:]}")
    cflags, lflags = json.loads(r.stdout.strip().splitlines()[-1])
    return cflags, lflags


def tf_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tensorflow")
    except PackageNotFoundError:
        return "unknown"


def find_nvcc() -> str | None:
    return shutil.which("nvcc") or (str(CUDA_HOME / "bin" / "nvcc") if (CUDA_HOME / "bin" / "nvcc").exists() else None)


def cxx_compile_command(source, obj, cflags, extra=()) -> list[str]:
    """One C++ source to an object file (the sources compile in parallel, `build`)."""
    return [os.environ.get("CXX", "g++"), "-std=c++17", "-c", "-fPIC", "-O3", "-Wno-deprecated-declarations",
            *extra, str(source), "-o", str(obj), *cflags]


def cxx_link_command(objects, out, lflags) -> list[str]:
    return [os.environ.get("CXX", "g++"), "-shared", "-fPIC", *map(str, objects), "-o", str(out), *lflags]


def cuda_arch_flags(archs: str | None = None) -> list[str]:
    """-gencode flags: SASS for every arch in `archs` (default $TFVR_CUDA_ARCHS or DEFAULT_CUDA_ARCHS), plus PTX of
    the last one so newer GPUs JIT-compile it."""
    archs = archs or os.environ.get("TFVR_CUDA_ARCHS") or DEFAULT_CUDA_ARCHS
    values = [a.strip() for a in archs.replace(",", ";").split(";") if a.strip()]
    if not values or not all(a.isdigit() for a in values):
        raise RuntimeError(f"TFVR_CUDA_ARCHS={archs!r}: expected compute capabilities like '80;90'")
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in values]
    return flags + [f"-gencode=arch=compute_{values[-1]},code=compute_{values[-1]}"]


def nvcc_command(nvcc, source, out, archs: str | None = None) -> list[str]:
    # The .cu.cc includes only deform_conv.h and the CUDA runtime (cuda_fp16.h / cuda_bf16.h): no TensorFlow flags.
    return [
        nvcc, "-std=c++17", "-c", "-x", "cu", "-O3", "-Xcompiler", "-fPIC", "-DGOOGLE_CUDA=1",
        "--expt-relaxed-constexpr", "-Wno-deprecated-gpu-targets", *cuda_arch_flags(archs),
        "-I" + str(CUDA_HOME / "include"), str(source), "-o", str(out),
    ]


def _signature(cuda: bool) -> str:
    return f"tensorflow=={tf_version()} {'cuda' if cuda else 'cpu'}"


def up_to_date(signature: str, cuda: bool) -> bool:
    """The library exists, is newer than its sources and was built against this TF (with CUDA if asked)."""
    if not LIBRARY.exists() or not STAMP.exists():
        return False
    try:
        built_tf, kind = STAMP.read_text().split()
    except (OSError, ValueError):
        return False
    if built_tf != signature.split()[0] or (cuda and kind != "cuda"):
        return False
    sources = CPU_SOURCES + HEADERS + (CUDA_SOURCES if kind == "cuda" else [])
    return LIBRARY.stat().st_mtime >= max(p.stat().st_mtime for p in sources)


def _run(cmd, quiet: bool) -> None:
    _run_all([cmd], quiet)


def _run_all(cmds, quiet: bool) -> None:
    """Runs the commands at once, at most os.cpu_count() at a time; the first failure (with its compiler
    message) is raised after all have ended."""
    from concurrent.futures import ThreadPoolExecutor

    for cmd in cmds:
        if not quiet:
            print("+", " ".join(cmd), flush=True)
    with ThreadPoolExecutor(max_workers=max(1, min(len(cmds), os.cpu_count() or 1))) as pool:
        results = list(pool.map(lambda c: subprocess.run(c, capture_output=True, text=True), cmds))
    for cmd, r in zip(cmds, results):
        if r.returncode != 0:
            raise RuntimeError(f"command failed ({r.returncode}): {' '.join(cmd[:3])} …\n{r.stderr[-4000:]}")


def build(cuda: bool = False, force: bool = False, quiet: bool = False, out: Path = LIBRARY) -> Path:
    """Compiles the library to `out` (atomically: a temp name, then rename) and returns its path."""
    signature = _signature(cuda)
    if out == LIBRARY and not force and up_to_date(signature, cuda):
        if not quiet:
            print(f"{LIBRARY.name} is up to date")
        return LIBRARY
    cflags, lflags = tf_flags()
    with tempfile.TemporaryDirectory(prefix="tfvr-build-") as tmp:
        tmp_out = Path(tmp) / out.name
        jobs, objects, extra = [], [], []
        if cuda:
            nvcc = find_nvcc()
            if nvcc is None:
                raise RuntimeError("--cuda: nvcc not found (PATH, $CUDA_HOME/bin)")
            for src in CUDA_SOURCES:
                obj = Path(tmp) / (src.name + ".o")
                jobs.append(nvcc_command(nvcc, src, obj))
                objects.append(obj)
            extra = ["-DGOOGLE_CUDA=1", "-I" + str(CUDA_HOME / "include")]
            lflags = lflags + ["-L" + str(CUDA_HOME / "lib64"), "-l:libcudart_static.a", "-ldl", "-lrt", "-lpthread"]
        for src in CPU_SOURCES:  # every source its own compiler process, in parallel (2 cores: 42.3 -> 21.7 s)
            obj = Path(tmp) / (src.name + ".o")
            jobs.append(cxx_compile_command(src, obj, cflags, extra))
            objects.append(obj)
        _run_all(jobs, quiet)
        _run(cxx_link_command(objects, tmp_out, lflags), quiet)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_final = out.with_name(out.name + ".tmp")
        shutil.copyfile(tmp_out, tmp_final)
        os.replace(tmp_final, out)
    if out == LIBRARY:
        STAMP.write_text(signature + "\n")
    if not quiet:
        print(f"built {out}" + (" (CPU + CUDA kernels)" if cuda else " (CPU kernel)"))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tfvr.ops.build", description=__doc__.splitlines()[0])
    ap.add_argument("--cuda", action="store_true", help="also compile the CUDA kernels with nvcc")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    ap.add_argument("--quiet", action="store_true", help="print only errors")
    args = ap.parse_args(argv)
    try:
        build(cuda=args.cuda, force=args.force, quiet=args.quiet)
    except (RuntimeError, OSError) as e:
        print(f"tfvr.ops.build: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
