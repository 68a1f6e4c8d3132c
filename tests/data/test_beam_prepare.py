"""`tfvr prepare --runner beam` (issue 16, item 5): the Beam pipeline writes the single-process path's shards and
manifest (same clips, same split). The pipeline tests need the optional extra (`pip install 'tfvr[beam]'`)."""

import filecmp
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import unavailable
from tfvr.data import synthetic
from tfvr.data.beam_prepare import beam_available

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# scripts/venv.sh installs Beam into its own folder (.venv/beam-site; scripts/test.sh exports TFVR_BEAM_SITE): only
# the processes these tests start put it on their path, so the rest of the suite keeps the pinned protobuf.
BEAM_SITE = os.environ.get("TFVR_BEAM_SITE", "")


def _beam_path() -> list:
    return [BEAM_SITE] if BEAM_SITE and os.path.isdir(os.path.join(BEAM_SITE, "apache_beam")) else []


@pytest.fixture
def beam():
    """Skips (fails under CI) when Apache Beam is neither importable here nor installed in TFVR_BEAM_SITE."""
    if not (beam_available() or _beam_path()):
        unavailable("apache-beam is not installed (pip install 'tfvr[beam]', or bash scripts/venv.sh)")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("beam_src")
    for i in range(3):
        synthetic.write_mp4(synthetic.generate(30 + i, 30, 40, 56, cuts=[15], fps=10.0), d / f"v{i}.mp4", fps=10.0)
    (d / "sub").mkdir()
    synthetic.write_mp4(synthetic.generate(40, 20, 40, 56, fps=10.0), d / "sub" / "w.mp4", fps=10.0)
    (d / "broken.mp4").write_bytes(b"not a video")
    return d


def _cli(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p] + _beam_path()), OPENCV_FFMPEG_LOGLEVEL="-8")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "tfvr.cli", "prepare", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)


def test_beam_runner_writes_the_same_shards_and_manifest(beam, videos, tmp_path):
    common = ["--clip-len", "5", "--num-shards", "3", "--val-fraction", "0.3", "--quiet"]
    a = _cli(str(videos), str(tmp_path / "direct"), *common)
    trace = tmp_path / "trace.txt"
    b = _cli(str(videos), str(tmp_path / "beam"), *common, "--runner", "beam", "--workers", "2",
             "--threads-per-worker", "1", env_extra={"TFVR_BEAM_TRACE": str(trace)})
    assert a.returncode == b.returncode == 1, (a.stderr, b.stderr)  # broken.mp4 is listed, the others prepared
    assert "broken.mp4" in b.stderr
    names = sorted(os.listdir(tmp_path / "direct"))
    assert names == sorted(os.listdir(tmp_path / "beam"))  # no scratch / report files left
    shards = [n for n in names if n.endswith(".tfrecord")]
    assert len(shards) == 6 and any(n.startswith("val-") for n in shards)
    for n in shards:
        assert filecmp.cmp(tmp_path / "direct" / n, tmp_path / "beam" / n, shallow=False), n
    ma = json.loads((tmp_path / "direct" / "manifest.json").read_text())
    mb = json.loads((tmp_path / "beam" / "manifest.json").read_text())
    assert mb["settings"].pop("runner") == "beam" and mb["settings"].pop("workers") == 2
    assert ma == mb
    assert ma["counts"]["clips"] > 0 and {v["split"] for v in ma["videos"]} == {"train", "val"}
    # the workers never imported TensorFlow (pure-Python Example + TFRecord framing): one line per source / shard
    steps = [ln.split() for ln in trace.read_text().splitlines()]
    assert sum(s[1] == "source" for s in steps) == 5 and sum(s[1] == "shard" for s in steps) == 6
    assert all(s[5] == "0" for s in steps if s[1] in ("source", "shard")), steps
    # the console stays quiet: no Beam worker INFO lines, no TensorFlow start-up lines
    assert "INFO:" not in b.stderr and "absl::InitializeLog" not in b.stderr and "Detecting scenes" not in b.stderr


def test_default_threads_per_worker_shares_the_cores_out():
    from tfvr.data.beam_prepare import default_threads_per_worker

    assert [default_threads_per_worker(n, cores=2) for n in (1, 2, 3)] == [2, 1, 1]
    assert [default_threads_per_worker(n, cores=16) for n in (1, 2, 3, 4, 32)] == [16, 8, 5, 4, 1]
    assert default_threads_per_worker(2) >= 1  # this machine's affinity


def test_pipeline_options_default_to_multiprocess_direct_runner(beam):
    code = (
        "from tfvr.data.beam_prepare import pipeline_options\n"
        "opts = pipeline_options(3).get_all_options()\n"
        "assert opts['runner'] == 'DirectRunner' and opts['direct_num_workers'] == 3\n"
        "assert opts['direct_running_mode'] == 'multi_processing'\n"
        "opts = pipeline_options(3, ['--runner=FlinkRunner', '--flink_master=h:8081']).get_all_options()\n"
        "assert opts['runner'] == 'FlinkRunner' and opts['flink_master'] == 'h:8081'\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO] + _beam_path()))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


def test_beam_runner_without_beam_is_a_one_line_error(videos, tmp_path):
    if beam_available() or _beam_path():
        # hide apache_beam from the child process: a finder that refuses it
        block = tmp_path / "block"
        block.mkdir()
        (block / "sitecustomize.py").write_text(
            "import sys\nclass _B:\n    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'apache_beam' or name.startswith('apache_beam.'):\n"
            "            raise ImportError('blocked')\nsys.meta_path.insert(0, _B())\n")
        extra = {"PYTHONPATH": os.pathsep.join([str(block), REPO])}
    else:
        extra = None
    r = _cli(str(videos), str(tmp_path / "out"), "--runner", "beam", env_extra=extra)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "tfvr prepare: error: --runner beam needs Apache Beam: pip install 'tfvr[beam]' (or use --runner direct)"]
    assert not (tmp_path / "out").exists()
