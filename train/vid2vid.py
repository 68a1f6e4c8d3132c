"""Train vid2vid (Wang et al., NeurIPS 2018) on label-to-video clips with its per-frame baseline, evaluate, export.

    python train/vid2vid.py --flagfile=train/configs/vid2vid_demo.flags --workdir=runs/vid2vid_demo

Writes <workdir>/config.json, checkpoints/, TensorBoard events, eval.json (psnr_model, psnr_baseline, ewarp_model,
ewarp_baseline, ewarp_gt) and export/ (a streaming next-frame SavedModel for `tfvr synthesize`).
Re-running the command resumes.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfvr import quiet  # noqa: E402

quiet.setup(sys.argv)  # before TensorFlow is imported; --verbose or TFVR_VERBOSE=1 shows everything

from tfvr.models.vid2vid.task import Vid2VidTask  # noqa: E402
from tfvr.training import app  # noqa: E402

if __name__ == "__main__":
    app.run(Vid2VidTask)
