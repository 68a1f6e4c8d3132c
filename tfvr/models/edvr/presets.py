"""Named EDVR configurations (BasicSR's option files / released checkpoints).

| preset | BasicSR option file / checkpoint | notes |
|---|---|---|
| edvr_m | train_EDVR_M_x4_SR_REDS.yml, EDVR_M_x4_SR_REDS_official | 64 ch, 5 frames, 5 + 10 RBs, TSA |
| edvr_m_notsa | train_EDVR_M_x4_SR_REDS_woTSA.yml | stage 1 of the M recipe (no TSA) |
| edvr_l | EDVR_L_x4_SR_REDS_official | 128 ch, 5 frames, 5 + 40 RBs, TSA |
| edvr_l_notsa | train_EDVR_L_x4_SR_REDS_woTSA.yml | stage 1 of the L recipe |
| edvr_l_vimeo | EDVR_L_x4_SR_Vimeo90K_official (tested on Vid4) | **7 frames** |
| edvr_l_deblur | EDVR_L_deblur_REDS_official | predeblur + hr_in, output = input size |
| edvr_l_deblurcomp | EDVR_L_deblurcomp_REDS_official | predeblur + hr_in (blur + compression) |
| edvr_l_srblur | EDVR_L_x4_SRblur_REDS_official | predeblur only, ×4 |
| edvr_m_7 | 7-frame M | — |
| edvr_l_stage2 | EDVR authors' EDVR_REDS_SR_Stage2 (NTIRE 2019 two-stage) | hr_in + predeblur, 128 ch, 5 + **20** RBs; refines stage-1 outputs (`tfvr.models.edvr.cascade`) |

`get_preset(name)` returns a fresh `EDVRConfig`; `PRESETS` lists the BasicSR constructor kwargs of each.
"""

from __future__ import annotations

from tfvr.errors import ConfigError
from tfvr.models.edvr.config import EDVRConfig

PRESETS: dict[str, dict] = {
    "edvr_m": dict(num_feat=64, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=10),
    "edvr_m_notsa": dict(num_feat=64, num_frame=5, deformable_groups=8, num_extract_block=5,
                         num_reconstruct_block=10, with_tsa=False),
    "edvr_m_7": dict(num_feat=64, num_frame=7, deformable_groups=8, num_extract_block=5, num_reconstruct_block=10),
    "edvr_l": dict(num_feat=128, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=40),
    "edvr_l_notsa": dict(num_feat=128, num_frame=5, deformable_groups=8, num_extract_block=5,
                         num_reconstruct_block=40, with_tsa=False),
    "edvr_l_vimeo": dict(num_feat=128, num_frame=7, deformable_groups=8, num_extract_block=5,
                         num_reconstruct_block=40),
    "edvr_l_deblur": dict(num_feat=128, num_frame=5, deformable_groups=8, num_extract_block=5,
                          num_reconstruct_block=40, hr_in=True, with_predeblur=True),
    "edvr_l_deblurcomp": dict(num_feat=128, num_frame=5, deformable_groups=8, num_extract_block=5,
                              num_reconstruct_block=40, hr_in=True, with_predeblur=True),
    "edvr_l_stage2": dict(num_feat=128, num_frame=5, deformable_groups=8, num_extract_block=5,
                          num_reconstruct_block=20, hr_in=True, with_predeblur=True),
    "edvr_l_srblur": dict(num_feat=128, num_frame=5, deformable_groups=8, num_extract_block=5,
                          num_reconstruct_block=40, with_predeblur=True),
}


def get_preset(name: str, **overrides) -> EDVRConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown EDVR preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return EDVRConfig(**{**PRESETS[name], **overrides})
