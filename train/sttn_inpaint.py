"""Train STTN-I (Zeng, Fu, Chao, ECCV 2020) video inpainting as a GAN, evaluate hole PSNR, export.

    python train/sttn_inpaint.py --flagfile=train/configs/sttn_inpaint_demo.flags --workdir=runs/demo/sttn_inpaint

Writes <workdir>/config.json, checkpoints/, TensorBoard events (losses: loss/hole, loss/valid, loss/gan,
loss/dis*; images: masked | output | composite | target), eval.json (hole PSNR and whole-frame PSNR on held-out
clips; with `--config.eval_at_start=true` also the same metrics before training, `*_start`) and export/ (a
SavedModel for `tfvr inpaint`). Re-running the command resumes.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfvr import quiet  # noqa: E402

quiet.setup(sys.argv)  # before TensorFlow is imported; --verbose or TFVR_VERBOSE=1 shows everything

from tfvr.models.sttn_inpaint.task import STTNInpaintTask  # noqa: E402
from tfvr.training import app  # noqa: E402

if __name__ == "__main__":
    app.run(STTNInpaintTask)
