"""`tfvr synthesize --model DIR LABELS out.mp4`: generate a video from a label video with a vid2vid SavedModel.

    tfvr synthesize --model runs/demo/vid2vid/export labels/ generated.mp4
    tfvr synthesize --model runs/demo/vid2vid/export --instances inst/ labels/ generated.mp4
    tfvr synthesize --model runs/demo/vid2vid/export labels_colour.mp4 generated.mp4

LABELS is either
- a folder of label maps, one image per frame in file-name order (PNG/BMP/TIFF; 8- or 16-bit single channel,
  pixel = class id: the Cityscapes `*_labelIds.png` convention), or
- a video (or a folder of RGB images) whose pixels are class *colours*: each pixel is snapped to the nearest
  colour of `--palette` ("synthetic": the colours of `tfvr.data.synthetic.colorize_labels`; or a JSON file with a
  list of [R, G, B], one per class), so lossy video coding does not change the classes.

`--model`: the streaming export of a vid2vid run (`assets/tfvr.json` kind "label-to-video"; old "tfvr.vid2vid/1"
exports too) or converted weights (`X.weights.h5` + `X.config.json`). Frames are
generated one after another, each from the labels of the current and previous frames and the model's own previous
outputs (the first frame from labels only), exactly as `serving_default` documents (`tfvr.models.vid2vid.export`).
A progress bar shows the frames. Output: OUT ending in .mp4/.avi/.mkv/.mov/.m4v is a video, anything else a folder
of PNG frames; written atomically and checked (`tfvr.inference.io.FrameSink`). Implementation: `tfvr.inference`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tfvr.cli import video_args
from tfvr.inference.synthesize import (count_frames, generate, iter_instance_maps,  # noqa: F401  (re-exported)
                                       iter_label_maps, load_palette, snap_to_palette)


def add_arguments(p: argparse.ArgumentParser) -> None:
    video_args.add_io(p, "labels", "folder of label maps (class ids) or a colour label video/folder",
                      "output .mp4 (or .avi/.mkv/.mov/.m4v), or a folder for PNG frames",
                      "vid2vid SavedModel folder (a vid2vid run's export/) or converted X.weights.h5")
    p.add_argument("--instances", type=Path, default=None,
                   help="folder of instance-id maps (needed by models trained with instance edges)")
    p.add_argument("--palette", default="synthetic",
                   help='class colours for colour label inputs: "synthetic" or a JSON file [[R,G,B], ...]')
    p.add_argument("--first-frame", default="labels", choices=("labels", "zeros"),
                   help="how the sequence starts: labels = frame 0 from its labels alone (tfvr's rule, as in "
                        "training); zeros = NVIDIA's --no_first_img (frames 0..n-2 are not written, frame n-1 is "
                        "the raw image with zero previous frames)")
    p.add_argument("--first-frames", type=Path, default=None, metavar="FRAMES",
                   help="NVIDIA's --use_real_img: a video or image folder whose first n-1 frames start the "
                        "sequence (copied to the output as they are)")
    video_args.add_run_options(p, "generate only the first N frames",
                               "output frame rate (default: the input video's, or 24)")


def run(args) -> int:
    from tfvr.inference.synthesize import synthesize_video

    r = synthesize_video(args.model, args.labels, args.output, instances=args.instances, palette=args.palette,
                         fps=args.fps, max_frames=args.max_frames, overwrite=args.overwrite, quiet=args.quiet,
                         first_frames=args.first_frames, first_frame=args.first_frame)
    print(f"generated {r.frames} frames from {args.labels} -> {r.output}")
    return 0
