"""Train STTN-R (Kim et al., ECCV 2018) for video denoising / deblurring, evaluate, export.

    python train/sttn.py --flagfile=train/configs/sttn_denoise_demo.flags --workdir=runs/sttn_demo

Writes <workdir>/config.json, checkpoints/, TensorBoard events, eval.json and export/ (a TF Serving SavedModel),
and prints PSNR of the degraded input, the single-frame ablation and STTN-R. Re-running the command resumes.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfvr import quiet  # noqa: E402

quiet.setup(sys.argv)  # before TensorFlow is imported; --verbose or TFVR_VERBOSE=1 shows everything

from tfvr.models.sttn_restore.task import STTNRestoreTask  # noqa: E402
from tfvr.training import app  # noqa: E402

if __name__ == "__main__":
    app.run(STTNRestoreTask)
