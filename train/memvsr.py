"""Train MemVSR (seed 004): memory-augmented next-frame prediction or EDVR + memory VSR, evaluate, export.

    python train/memvsr.py --flagfile=train/configs/memvsr_nextframe_demo.flags --workdir=runs/demo/memvsr_nf
    python train/memvsr.py --flagfile=train/configs/memvsr_vsr_demo.flags --workdir=runs/demo/memvsr_vsr

Writes <workdir>/config.json, checkpoints/, TensorBoard events (losses, predictions, memory read weights per slot),
best_loss/ and last/ (validation PNGs: out_image/, weight_image/), eval.json (next-frame: psnr_model and
psnr_copy_last; VSR: psnr_model and psnr_bicubic) and export/. Re-running the command resumes.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfvr import quiet  # noqa: E402

quiet.setup(sys.argv)  # before TensorFlow is imported; --verbose or TFVR_VERBOSE=1 shows everything

from tfvr.models.memvsr.task import MemVSRTask  # noqa: E402
from tfvr.training import app  # noqa: E402

if __name__ == "__main__":
    app.run(MemVSRTask)
