"""Train EDVR (Wang et al., CVPRW 2019) for ×4 video super-resolution (or deblurring with hr_in), evaluate, export.

    python train/edvr.py --flagfile=train/configs/edvr_m_sr4x_demo.flags --workdir=runs/demo/edvr_m

Writes <workdir>/config.json, checkpoints/, TensorBoard events (loss, learning rates, mean |offset| per DCN),
eval.json and export/ (a TF Serving SavedModel for `tfvr restore`), and prints the PSNR of EDVR next to bicubic
×4 up-sampling on the held-out clips. Re-running the command resumes. Stabilisers: see tfvr/models/edvr/task.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfvr import quiet  # noqa: E402

quiet.setup(sys.argv)  # before TensorFlow is imported; --verbose or TFVR_VERBOSE=1 shows everything

from tfvr.models.edvr.task import EDVRTask  # noqa: E402
from tfvr.training import app  # noqa: E402

if __name__ == "__main__":
    app.run(EDVRTask)
