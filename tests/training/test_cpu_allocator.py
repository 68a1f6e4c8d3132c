"""Training processes use TensorFlow's BFC allocator for CPU tensors (`tfvr.training.app.use_bfc_cpu_allocator`)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfvr.training import app

REPO = Path(__file__).resolve().parents[2]


def test_bfc_is_asked_for_unless_the_user_said_otherwise(monkeypatch):
    monkeypatch.delenv("TF_CPU_ALLOCATOR_USE_BFC", raising=False)
    monkeypatch.delenv("TF_CPU_BFC_MEM_LIMIT_IN_MB", raising=False)
    assert app.use_bfc_cpu_allocator() is True
    assert os.environ["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
    ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    assert int(os.environ["TF_CPU_BFC_MEM_LIMIT_IN_MB"]) == max(65536, ram_mb)  # never below TF's 64 GiB cap
    monkeypatch.setenv("TF_CPU_BFC_MEM_LIMIT_IN_MB", "1234")  # the user's limit is kept
    assert app.use_bfc_cpu_allocator() and os.environ["TF_CPU_BFC_MEM_LIMIT_IN_MB"] == "1234"
    monkeypatch.delenv("TF_CPU_BFC_MEM_LIMIT_IN_MB")
    monkeypatch.setenv("TF_CPU_ALLOCATOR_USE_BFC", "false")  # the user's opt-out
    assert app.use_bfc_cpu_allocator() is False
    assert "TF_CPU_BFC_MEM_LIMIT_IN_MB" not in os.environ


def test_run_asks_for_bfc_before_anything_else(monkeypatch):
    calls = []

    def fake():
        calls.append("bfc")
        raise SystemExit(0)  # stop there: nothing of the run happens before it

    monkeypatch.setattr(app, "use_bfc_cpu_allocator", fake)
    with pytest.raises(SystemExit):
        app.run(object, argv=["prog", "--workdir=/nonexistent"])
    assert calls == ["bfc"]


def test_a_train_script_process_allocates_from_bfc(tmp_path):
    """In a train script's process (the task imported, then `app.run`): TensorFlow's CPU allocator is BFC (its
    stats exist; malloc's allocator has none), i.e. no op ran before `use_bfc_cpu_allocator`."""
    code = (
        "import sys; sys.argv = ['prog', '--workdir=' + sys.argv[1]]\n"
        "from tests.training import toy_train\n"
        "from tfvr.training import app, loop\n"
        "def train(self, *a, **k):\n"
        "    import tensorflow as tf\n"
        "    print('STATS', tf.config.experimental.get_memory_info('CPU:0'), flush=True)\n"
        "    raise SystemExit(0)\n"
        "loop.Trainer.train = train\n"
        "toy_train.main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPU_")}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "STATS {'current'" in r.stdout, (r.stdout[-2000:], r.stderr[-3000:])
