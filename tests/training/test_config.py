"""tfvr.config: JSON round trip, strict loading, flagfile checks, and the one-line typo message of a train script."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO
from tests.training.toy import ToyExperiment
from tfvr import config as C
from tfvr.errors import ConfigError


def test_json_round_trip(tmp_path):
    e = ToyExperiment()
    e.optim.milestones = (10, 20)
    e.model.features = 5
    C.save_json(e, tmp_path / "config.json", task="toy_denoise", task_module="tests.training.toy")
    raw = json.loads((tmp_path / "config.json").read_text())
    assert raw["task"] == "toy_denoise" and raw["optim"]["milestones"] == [10, 20]
    back = C.load_json(ToyExperiment, tmp_path / "config.json")
    assert back == e
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp file left behind


def test_json_strict(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"optim": {"learning_rat": 1}}))
    with pytest.raises(ConfigError, match=r"config.json: optim: unknown field 'learning_rat'.*learning_rate"):
        C.load_json(ToyExperiment, path)
    path.write_text(json.dumps({"trainer": {"num_steps": "ten"}}))
    with pytest.raises(ConfigError, match=r"config.json: trainer.num_steps: expected an integer"):
        C.load_json(ToyExperiment, path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        C.load_json(ToyExperiment, path)


def test_read_json_config_messages(tmp_path):
    path = tmp_path / "config.json"
    with pytest.raises(ConfigError, match=r"config.json: config file not found$"):
        C.read_json(path)
    path.write_text('{\n  "optim": {\n    "learning_rate": 1e-3\n    "beta1": 0.9\n  }\n}\n')
    with pytest.raises(ConfigError, match=r"config.json: not valid JSON \(Expecting ',' delimiter at line 4\)$"):
        C.read_json(path)
    path.write_text("[1]")
    with pytest.raises(ConfigError, match=r"config.json: expected a JSON object at the top level$"):
        C.read_json(path)
    path.write_text('{"optim": {}}')
    assert C.read_json(path) == {"optim": {}}


def _flags(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_check_overrides_names_file_line_and_field(tmp_path):
    inner = _flags(tmp_path, "inner.flags", "# comment\n\n--config.model.featurs=4\n")
    outer = _flags(tmp_path, "outer.flags", f"--config.trainer.num_steps=3\n--flagfile={inner}\n")
    with pytest.raises(ConfigError) as ei:
        C.check_overrides(ToyExperiment(), ["prog", f"--flagfile={outer}"])
    msg = str(ei.value)
    assert msg.startswith(f"{inner}:3: --config.model.featurs: unknown field 'featurs'")
    assert "did you mean 'features'" in msg


@pytest.mark.parametrize("line,problem", [
    ("--config.trainer.num_steps=1.5", "expected int"),
    ("--config.trainer.ema_decay=fast", "expected float"),
    ("--config.trainer.export=maybe", "expected true or false"),
    ("--config.optim.milestones=(1.5, 2)", "tuple of integers"),
    ("--config.optim", "group of settings"),
    ("--config.optim.learning_rate.x=1", "has no fields"),
    ("--config.trainer.num_steps", "needs a value"),
])
def test_check_overrides_bad_values(tmp_path, line, problem):
    f = _flags(tmp_path, "x.flags", line + "\n")
    with pytest.raises(ConfigError, match=problem):
        C.check_overrides(ToyExperiment(), ["prog", "--flagfile", f])


def test_check_overrides_accepts_good_lines(tmp_path):
    f = _flags(tmp_path, "ok.flags", "\n".join([
        "--config.trainer.num_steps=3", "--config.trainer.export=false", "--noconfig.trainer.eval_at_end",
        "--config.optim.milestones=(1, 2)", "--config.optim.restart_weights=1", "--config.name=abc",
        "// another comment", "--workdir=/tmp/x"]) + "\n")
    C.check_overrides(ToyExperiment(), ["prog", f"--flagfile={f}", "--config.model.features=3"])
    with pytest.raises(ConfigError, match="command line: --config.model.feature"):
        C.check_overrides(ToyExperiment(), ["prog", "--config.model.feature=3"])
    with pytest.raises(ConfigError, match="flagfile not found"):
        C.check_overrides(ToyExperiment(), ["prog", f"--flagfile={tmp_path}/missing.flags"])


def test_checked_argv_reads_each_flagfile_once(tmp_path, monkeypatch):
    """What `training.app.run` parses: checked as `check_overrides`, flattened as `last_overrides`, one read."""
    inner = _flags(tmp_path, "inner.flags", "--config.optim.milestones=(900,)\n--config.trainer.num_steps=3\n")
    outer = _flags(tmp_path, "outer.flags", f"--flagfile={inner}\n--workdir=/w\n")
    argv = ["prog", f"--flagfile={outer}", "--config.optim.milestones=(10,)"]
    reads = []
    real = C.read_flagfile_lines
    monkeypatch.setattr(C, "read_flagfile_lines", lambda path, *a: reads.append(path) or real(path, *a))
    flat = C.checked_argv(ToyExperiment(), argv)
    assert sorted(reads) == sorted([inner, outer])
    assert flat == ["prog", "--config.trainer.num_steps=3", "--workdir=/w", "--config.optim.milestones=(10,)"]
    assert flat == C.last_overrides(argv)
    typo = _flags(tmp_path, "typo.flags", "# steps\n--config.trainer.num_step=1\n")
    with pytest.raises(ConfigError, match=f"typo.flags:2: --config.trainer.num_step: unknown field 'num_step'"):
        C.checked_argv(ToyExperiment(), [*argv, f"--flagfile={typo}"])


def test_train_script_flagfile_typo_is_one_line(tmp_path):
    f = _flags(tmp_path, "typo.flags", "--config.trainer.num_steps=2\n--config.optim.lerning_rate=1e-3\n")
    proc = subprocess.run([sys.executable, "-m", "tests.training.toy_train", f"--flagfile={f}",
                           f"--workdir={tmp_path / 'w'}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ": error: " in ln]
    assert len(lines) == 1, proc.stderr
    assert f"{f}:2: --config.optim.lerning_rate: unknown field 'lerning_rate'" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "w")


def test_command_line_replaces_a_flagfiles_tuple(tmp_path, monkeypatch):
    """ml_collections appends a repeated tuple field; `last_overrides` (what train scripts parse) keeps the last."""
    import dataclasses

    from absl import flags
    from ml_collections import config_flags

    from tfvr.config import last_overrides

    @dataclasses.dataclass
    class Optim:
        milestones: tuple[int, ...] = (1,)
        lr: float = 1.0

    @dataclasses.dataclass
    class Exp:
        optim: Optim = dataclasses.field(default_factory=Optim)

    ff = tmp_path / "x.flags"
    ff.write_text("--config.optim.milestones=(900,)\n--config.optim.lr=0.5\n--workdir=/w\n")
    argv = ["prog", f"--flagfile={ff}", "--config.optim.milestones=(10,)", "--config.optim.lr=0.25"]
    flat = last_overrides(argv)
    assert flat == ["prog", "--workdir=/w", "--config.optim.milestones=(10,)", "--config.optim.lr=0.25"]

    def parse(args):
        monkeypatch.setattr("sys.argv", list(args))  # ml_collections reads the overrides when the flag is defined
        fv = flags.FlagValues()
        config_flags.DEFINE_config_dataclass("config", Exp(), flag_values=fv)
        flags.DEFINE_string("workdir", None, "", flag_values=fv)
        fv(args)
        return fv.config

    assert parse(argv).optim.milestones == (900, 10)  # ml_collections on its own: appended
    cfg = parse(flat)
    assert cfg.optim.milestones == (10,) and cfg.optim.lr == 0.25
