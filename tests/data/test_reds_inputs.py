"""REDS's four inputs: `tfvr prepare --layout reds --reds-input {sharp_bicubic,blur,blur_comp,blur_bicubic}` on a fake
REDS copy, what the manifest and records carry, and `data.lq_kind` selecting them in the pipeline."""

import json

import numpy as np
import pytest

from tests.fake_data import make_reds
from tfvr.cli import main
from tfvr.data import layouts, pipeline, records
from tfvr.data.config import DataConfig, EvalDataConfig
from tfvr.errors import UserError


@pytest.fixture(scope="module")
def reds(tmp_path_factory):
    return make_reds(tmp_path_factory.mktemp("fake") / "REDS", clips=("000", "001"), num_frames=6, height=32,
                     width=48)


@pytest.fixture(scope="module")
def prepared(reds, tmp_path_factory):
    out = {}
    base = tmp_path_factory.mktemp("prepared")
    for kind in ("sharp_bicubic", "blur", "blur_comp", "blur_bicubic"):
        d = base / kind
        assert main(["prepare", str(reds), str(d), "--layout", "reds", "--reds-input", kind, "--clip-len", "6",
                     "--quiet"]) == 0
        out[kind] = d
    return out


WANT = {"sharp_bicubic": ("lr", 4, (8, 12)), "blur": ("blur", 1, (32, 48)), "blur_comp": ("blur_comp", 1, (32, 48)),
        "blur_bicubic": ("blur_lr", 4, (8, 12))}


@pytest.mark.parametrize("kind", list(WANT))
def test_prepare_reads_each_reds_input(reds, prepared, kind):
    m = json.loads((prepared[kind] / "manifest.json").read_text())
    lq_kind, scale, (lh, lw) = WANT[kind]
    assert m["layout"] == "reds" and m["settings"]["reds_input"] == kind
    for split in ("train", "val"):  # 001 -> train, 000 (REDS4) -> val
        assert m["splits"][split]["lq_kind"] == lq_kind and m["splits"][split]["lq_scale"] == scale
    (clip,) = [c for p in records.list_shards(prepared[kind], "train") for c in records.read_clips(p)]
    assert clip["lq_kind"] == lq_kind and clip["lq"].shape == (6, lh, lw, 3)
    folder = {"sharp_bicubic": "train_sharp_bicubic/X4", "blur": "train_blur", "blur_comp": "train_blur_comp",
              "blur_bicubic": "train_blur_bicubic/X4"}[kind]
    import cv2

    first = cv2.imread(str(reds / folder / "001" / "00000000.png"))[..., ::-1]
    np.testing.assert_array_equal(clip["lq"][0], first)  # the file's pixels, untouched


@pytest.mark.parametrize("kind,task,scale", [("sharp_bicubic", "sr", 4), ("blur", "deblur", 1),
                                             ("blur_comp", "deblur", 1), ("blur_bicubic", "sr", 4)])
def test_data_config_selects_the_input(prepared, kind, task, scale):
    lq_kind = WANT[kind][0]
    cfg = DataConfig(task=task, scale=4, lq_kind=lq_kind, num_frames=3, crop_size=16, batch_size=2,
                     deterministic=True, shuffle_buffer=2, eval=EvalDataConfig(batch_size=1))
    b = next(iter(pipeline.build_dataset(cfg, records_dir=prepared[kind])))
    assert b["gt"].shape == (2, 3, 16, 16, 3) and b["lq"].shape == (2, 3, 16 // scale, 16 // scale, 3)
    # Another prepared input is refused with a line naming what the records hold.
    other = "blur" if kind != "blur" else "blur_comp"
    with pytest.raises(UserError, match=f"data.lq_kind={lq_kind!r}.*lq_kind={WANT[other][0]!r}"):
        pipeline.build_dataset(cfg, records_dir=prepared[other])


def test_auto_keeps_the_old_behaviour_and_missing_inputs_are_named(tmp_path):
    src = make_reds(tmp_path / "REDS", clips=("001",), num_frames=3, height=16, width=16, inputs=("blur",))
    _, srcs = layouts.scan(src, "reds")  # auto: sharp_bicubic when present -> none here, unpaired
    assert srcs[0].lq is None
    _, srcs = layouts.scan(src, "reds", reds_input="blur")
    assert srcs[0].lq_kind == "blur" and len(srcs[0].lq) == 3
    with pytest.raises(UserError, match="--reds-input blur_comp needs train_blur_comp"):
        layouts.scan(src, "reds", reds_input="blur_comp")
    with pytest.raises(UserError, match="reds layout only"):
        layouts.scan(src, "frames", reds_input="blur")
