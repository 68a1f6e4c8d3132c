"""EDVR model configuration: exactly the `EDVR` constructor's arguments (keras-hub's rule; a test checks it).

The first eleven fields are BasicSR's `EDVR(...)` keyword arguments with BasicSR's defaults (EDVR-M), so a BasicSR
YAML `network_g` section maps onto this dataclass one to one. The last two are tfvr's own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional


@dataclass
class EDVRConfig:
    """Args (BasicSR names and defaults):
        num_in_ch: input channels (3).
        num_out_ch: output channels (3). BasicSR hard-codes 3 in `conv_last`; tfvr uses this value, and the global
            residual needs `num_out_ch == num_in_ch`.
        num_feat: feature channels (64 for M, 128 for L).
        num_frame: input frames T (5 for REDS, 7 for the Vimeo-90K / Vid4 models).
        deformable_groups: offset groups of every DCN (8).
        num_extract_block: ResidualBlockNoBN blocks in feature extraction (5).
        num_reconstruct_block: ResidualBlockNoBN blocks in reconstruction (10 for M, 40 for L).
        center_frame_idx: reference frame index; None = num_frame // 2.
        hr_in: the input is already high resolution (deblurring): two extra stride-2 convs in the predeblur module,
            output at the input size, base = centre frame. Requires `with_predeblur` (BasicSR cannot run without it).
        with_predeblur: PredeblurModule + 1×1 conv instead of `conv_first`.
        with_tsa: TSA fusion; False = a plain 1×1 conv over the concatenated aligned features.
    tfvr only:
        dcn_impl: deformable-conv implementation, "auto" | "reference" | "kernel" (`tfvr.ops.deform_conv`).
        pad_mode: how inputs whose H, W are not multiples of 4 (16 with hr_in) are padded before the network and
            cropped after: "reflect" (default) | "replicate" | "zeros".
    """

    num_in_ch: int = 3
    num_out_ch: int = 3
    num_feat: int = 64
    num_frame: int = 5
    deformable_groups: int = 8
    num_extract_block: int = 5
    num_reconstruct_block: int = 10
    center_frame_idx: Optional[int] = None
    hr_in: bool = False
    with_predeblur: bool = False
    with_tsa: bool = True
    dcn_impl: str = "auto"
    pad_mode: str = "reflect"

    def to_kwargs(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def basicsr_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))[:11]

    @property
    def scale(self) -> int:
        return 1 if self.hr_in else 4

    @property
    def size_multiple(self) -> int:
        return 16 if self.hr_in else 4
