"""The shared test harness (tests/helpers.py) fails where it should: a checker that cannot fail checks nothing."""

import dataclasses

import keras
import numpy as np
import pytest

from tests.helpers import check_config_errors, check_flagfile, run_model_test, toy_flags
from tests.training.toy import ToyExperiment, ToyTask
from tfvr.errors import ConfigError, UserError


def test_check_flagfile_parses_with_the_real_parser_and_rejects_what_train_scripts_reject(tmp_path):
    good = tmp_path / "good.flags"
    good.write_text(toy_flags(trainer__num_steps=7, model__features=3, data__noise=0.25))
    cfg = check_flagfile(good, ToyExperiment, task_cls=ToyTask)
    assert (cfg.trainer.num_steps, cfg.model.features, cfg.data.noise) == (7, 3, 0.25)
    typo = tmp_path / "typo.flags"
    typo.write_text("--config.model.featurs=3\n")
    with pytest.raises(UserError, match="typo.flags:1"):
        check_flagfile(typo, ToyExperiment)
    out_of_range = tmp_path / "range.flags"
    out_of_range.write_text("--config.trainer.num_steps=-1\n")
    with pytest.raises(ConfigError, match="num_steps"):
        check_flagfile(out_of_range, ToyExperiment)
    with pytest.raises(AssertionError, match="how-to-run"):
        check_flagfile(good, ToyExperiment, how_to_run=True)


def test_check_config_errors_fails_when_the_task_accepts_the_value():

    with pytest.raises(pytest.fail.Exception):
        check_config_errors(ToyTask, ToyExperiment, [("model.features", 5, "features")])  # a valid value


@dataclasses.dataclass
class _Config:
    width: int = 4
    scale: float = 1.0


@keras.saving.register_keras_serializable("tfvr_test_helpers")
class _Forgetful(keras.Model):
    """get_config loses `scale`: run_model_test must say so."""

    def __init__(self, width=4, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.width, self.scale = width, scale
        self.conv = keras.layers.Conv2D(width, 3, padding="same")

    def call(self, x):
        return self.conv(x) * self.scale

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def test_run_model_test_catches_a_lost_constructor_argument(tmp_path):
    x = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(AssertionError, match="lost constructor arguments"):
        run_model_test(_Forgetful, _Config(), [x], (1, 8, 8, 4), tmp_path=tmp_path)
    with pytest.raises(AssertionError):
        run_model_test(_Forgetful, _Config(width=4), [x], (1, 8, 8, 5), tmp_path=tmp_path)  # the wrong shape


def test_once_per_session_runs_once_across_workers_and_reports_a_failed_run(tmp_path, monkeypatch):
    import subprocess
    import sys

    from tests.helpers import once_per_session

    class _Factory:  # what pytest-xdist gives each worker: its own basetemp inside the session's
        def __init__(self, worker):
            self.base = tmp_path / f"popen-{worker}"
            self.base.mkdir()

        def getbasetemp(self):
            return self.base

    calls = []

    def make(folder):
        calls.append(folder)
        (folder / "out.txt").write_text("made")
        return subprocess.run([sys.executable, "-c", "import sys; print('hi'); sys.exit(0)"], capture_output=True,
                              text=True)

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    a_dir, a = once_per_session(_Factory("gw0"), "job", make)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    b_dir, b = once_per_session(_Factory("gw1"), "job", make)
    assert len(calls) == 1 and a_dir == b_dir == tmp_path / "once-job" and (b_dir / "out.txt").read_text() == "made"
    assert (b.returncode, b.stdout, b.stderr) == (a.returncode, a.stdout, a.stderr) == (0, "hi\n", "")

    def broken(folder):
        raise AssertionError("the run failed")

    with pytest.raises(AssertionError, match="the run failed"):
        once_per_session(_Factory("gw2"), "bad", broken)
    with pytest.raises(pytest.fail.Exception, match="failed in another worker"):
        once_per_session(_Factory("gw3"), "bad", broken)
