"""tfvr.presets: the released checkpoints as data; every preset's config builds the model that reads the released
file's keys and shapes (as the original code builds them: tests/fixtures/preset_state_keys.json, made by
tests/fixtures/make_preset_keys.py with basicsr / researchmm-STTN / NVIDIA-vid2vid in the peer venv)."""

import json
from pathlib import Path

import numpy as np
import pytest

from tfvr import presets
from tfvr.errors import UserError

KEYS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "preset_state_keys.json").read_text())

OFFICIAL_EDVR = {
    "EDVR_M_x4_SR_REDS_official-32075921.pth", "EDVR_L_x4_SR_REDS_official-9f5f5039.pth",
    "EDVR_L_x4_SRblur_REDS_official-983d7b8e.pth", "EDVR_L_deblur_REDS_official-ca46bd8c.pth",
    "EDVR_L_deblurcomp_REDS_official-0e988e5c.pth", "EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth",
    "EDVR_M_woTSA_x4_SR_REDS_official-1edf645c.pth"}


def _random_state(name, seed=0):
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(s).astype(np.float32) * 0.01 if not k.endswith("num_batches_tracked")
                else np.zeros(s, np.int64)) for k, s in KEYS[name].items()}


def test_every_official_checkpoint_is_listed_with_sources():
    ps = presets.list_presets()
    assert {p.file for p in presets.list_presets("edvr")} == OFFICIAL_EDVR
    assert {p.family for p in ps} == {"edvr", "sttn_inpaint", "vid2vid"}
    assert set(KEYS) == {p.name for p in ps}
    for p in ps:
        assert p.download["url"].startswith("https://") and p.download["source"] and p.config_source, p.name
        for s in p.scores:
            assert s["source"] and isinstance(s["value"], float), p.name
    assert presets.get("edvr_l_x4_sr_reds").scores[0]["value"] == 31.09
    assert presets.get("edvr_l_x4_sr_vimeo90k").kwargs["num_frame"] == 7
    with pytest.raises(UserError, match="unknown preset 'nope'"):
        presets.get("nope")


def test_find_for_file():
    assert presets.find_for_file("/x/y/EDVR_L_x4_SR_REDS_official-9f5f5039.pth").name == "edvr_l_x4_sr_reds"
    assert presets.find_for_file("checkpoints/sttn.pth").name == "sttn_inpaint_youtube_vos"
    assert presets.find_for_file("latest_net_G0.pth") is None  # generic: the folder decides
    assert presets.find_for_file("checkpoints/label2city_1024_g1/latest_net_G0.pth").name == \
        "vid2vid_label2city_1024_g1"
    assert presets.find_for_file("my_edvr.pth") is None


def test_resolve_pytorch_checkpoint(tmp_path):
    missing = tmp_path / "EDVR_L_deblur_REDS_official-ca46bd8c.pth"
    with pytest.raises(UserError, match=r"no such file.*drive\.google\.com.*download_pretrained_models"):
        presets.resolve_pytorch_checkpoint(missing)
    missing.write_bytes(b"")
    arch, kw = presets.resolve_pytorch_checkpoint(missing)
    assert arch == "edvr" and kw["hr_in"] and kw["with_predeblur"] and kw["num_feat"] == 128
    arch, kw = presets.resolve_pytorch_checkpoint(missing, kwargs={"num_frame": 3})
    assert kw["num_frame"] == 3
    other = tmp_path / "mine.pth"
    other.write_bytes(b"")
    with pytest.raises(UserError, match="not a released checkpoint"):
        presets.resolve_pytorch_checkpoint(other)
    assert presets.resolve_pytorch_checkpoint(other, arch="edvr", preset="edvr_m")[1]["num_feat"] == 64
    assert presets.resolve_pytorch_checkpoint(other, preset="edvr_l_x4_sr_reds")[1]["num_reconstruct_block"] == 40
    with pytest.raises(UserError, match="unknown edvr preset"):
        presets.resolve_pytorch_checkpoint(other, arch="edvr", preset="edvr_xl")
    with pytest.raises(UserError, match="vid2vid generator needs"):
        presets.resolve_pytorch_checkpoint(other, arch="vid2vid")
    # EDVR without a preset: inferred from the state dict (here a woTSA M's keys).
    arch, kw = presets.resolve_pytorch_checkpoint(other, arch="edvr",
                                                  state_dict=_random_state("edvr_m_wotsa_x4_sr_reds"))
    assert (kw["num_feat"], kw["with_tsa"], kw["num_reconstruct_block"]) == (64, False, 10)


def test_resolve_reads_a_real_pth_without_torch(tmp_path):
    # tests/fixtures/pth has BasicSR-style wrapped files; a non-EDVR state dict gives a one-line error.
    src = Path(__file__).resolve().parents[1] / "fixtures" / "pth" / "wrapped_params.pth"
    with pytest.raises(UserError, match="not a BasicSR EDVR state dict"):
        presets.resolve_pytorch_checkpoint(src, arch="edvr")


@pytest.mark.parametrize("name", [p.name for p in presets.list_presets("edvr")])
def test_edvr_preset_kwargs_are_what_the_released_keys_say(name):
    from tfvr.models.edvr.convert import infer_basicsr_kwargs

    p = presets.get(name)
    inferred = infer_basicsr_kwargs(_random_state(name))
    assert inferred == {k: v for k, v in p.kwargs.items() if k != "center_frame_idx"}


# Building EDVR-L takes ~7 s here: build the architectures that differ (M + TSA, M without TSA, L with predeblur
# and hr_in); the other L presets differ from these only in kwargs checked above.
@pytest.mark.parametrize("name", ["edvr_m_x4_sr_reds", "edvr_m_wotsa_x4_sr_reds", "edvr_l_deblur_reds"])
def test_edvr_preset_builds_the_released_key_set_and_converts(name):
    from tfvr.models.edvr.convert import from_basicsr, to_basicsr

    p = presets.get(name)
    sd = _random_state(name, seed=1)
    model = from_basicsr(sd, source=p.file, **p.kwargs)  # every released key used, shapes checked
    back = to_basicsr(model)
    assert {k: list(np.shape(v)) for k, v in back.items()} == {
        k: s for k, s in KEYS[name].items() if not k.endswith("num_batches_tracked")}
    for key in ("conv_last.weight", "pcd_align.cas_dcnpack.conv_offset.weight"):
        np.testing.assert_allclose(back[key], sd[key], rtol=0, atol=1e-7)


def test_sttn_preset_converts_a_random_released_state_dict():
    from tfvr.models.sttn_inpaint.convert import convert_cli

    p = presets.get("sttn_inpaint_youtube_vos")
    gen = convert_cli(_random_state(p.name), None, p.kwargs, source=p.file)
    assert gen.count_params() == sum(int(np.prod(s)) for s in KEYS[p.name].values())


def test_vid2vid_preset_netG0_takes_the_released_key_set():
    # netG0 of label2city_1024_g1 (ngf 128, 9 blocks): ~13 s to build here; zeros instead of random weights (the
    # converter checks names and shapes strictly, values do not matter for that).
    from tfvr.models.vid2vid.convert import convert_cli

    p = presets.get("vid2vid_label2city_1024_g1")
    sd = {k: np.zeros(s, np.int64 if k.endswith("num_batches_tracked") else np.float32) for k, s in KEYS[p.name].items()}
    gen = convert_cli(sd, None, p.kwargs)
    assert gen.count_params() == sum(int(np.prod(s)) for k, s in KEYS[p.name].items()
                                     if not k.endswith("num_batches_tracked"))
    from tfvr.models.vid2vid.convert import load_state_dict

    with pytest.raises(ValueError, match="lacks"):
        load_state_dict(gen, {k: v for k, v in sd.items() if "model_final_w" not in k})
