"""Train stage 2 of EDVR's two-stage restoration: a shallower hr_in EDVR (20 blocks) refining the outputs of a frozen
stage-1 EDVR (tfvr.models.edvr.cascade).

    python train/edvr_stage2.py --flagfile=train/configs/edvr_l_sr4x_stage2.flags --workdir=runs/edvr_l_stage2 \
        --config.stage1.weights=runs/edvr_l_sr4x

Writes what train/edvr.py writes; eval.json reports the cascade (psnr_model) next to stage 1 alone (psnr_stage1)
and bicubic; the export is the whole cascade (T1 + T2 - 1 uint8 LR frames -> x4 frame) for `tfvr restore`.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfvr import quiet  # noqa: E402

quiet.setup(sys.argv)  # before TensorFlow is imported (TFVR_VERBOSE=1 shows its logs)

from tfvr.models.edvr.cascade import EDVRStage2Task  # noqa: E402
from tfvr.training import app  # noqa: E402

if __name__ == "__main__":
    app.run(EDVRStage2Task)
