"""DataConfig: plain typed fields with defaults, validation, and ml_collections flag overrides."""

import dataclasses
import sys
import typing

import pytest
from absl import flags
from ml_collections import config_flags

from tfvr.data.config import DataConfig, EvalDataConfig, SyntheticConfig, from_dict
from tfvr.errors import ConfigError


def test_every_field_is_plain_with_a_default():
    def check(cls):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, f.name
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                check(tp)
            else:
                assert tp in (int, float, bool, str, tuple[str, ...]), (cls.__name__, f.name, tp)

    check(DataConfig)
    DataConfig().validate()


def _parse(argv, monkeypatch):
    # ml_collections reads the --config.* overrides from sys.argv when the flag is defined.
    monkeypatch.setattr(sys, "argv", argv)
    fv = flags.FlagValues()
    config_flags.DEFINE_config_dataclass("config", DataConfig(), flag_values=fv)
    fv(argv)
    return fv.config


def test_flagfile_style_overrides(tmp_path, monkeypatch):
    flagfile = tmp_path / "data.flags"
    flagfile.write_text("--config.task=sr\n--config.scale=2\n--config.synthetic.num_frames=12\n"
                        "--config.eval.crop_size=32\n--config.hflip=false\n")
    cfg = _parse(["prog", f"--flagfile={flagfile}", "--config.crop_size=48"], monkeypatch)
    assert (cfg.task, cfg.scale, cfg.crop_hw, cfg.hflip) == ("sr", 2, (48, 48), False)
    assert cfg.synthetic.num_frames == 12 and cfg.eval.crop_hw == (32, 32)
    cfg.validate()
    with pytest.raises(Exception):
        _parse(["prog", "--config.nosie_sigma=5"], monkeypatch)  # a typo is an error, not a silent default


@pytest.mark.parametrize("kw, field", [
    (dict(task="dehaze"), "task"),
    (dict(num_frames=4), "num_frames"),
    (dict(task="sr", scale=4, crop_size=30), "crop_size"),
    (dict(task="sr", scale=4, eval=EvalDataConfig(crop_size=10)), "eval.crop_size"),
    (dict(random_frames_prob=1.5), "random_frames_prob"),
    (dict(batch_size=0), "batch_size"),
    (dict(num_frames=7, synthetic=SyntheticConfig(clip_len=5)), "synthetic.clip_len"),
])
def test_validate_names_the_field(kw, field):
    with pytest.raises(ConfigError, match=f"data.{field}:"):
        DataConfig(**kw).validate()


def test_from_dict_roundtrip_and_typos():
    cfg = DataConfig(task="deblur", synthetic=SyntheticConfig(num_frames=16), eval=EvalDataConfig(num_clips=3))
    assert from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="synthetic.heigth"):
        from_dict({"synthetic": {"heigth": 3}})
