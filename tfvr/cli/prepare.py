"""`tfvr prepare SRC_DIR OUT_DIR`: split real videos into scenes and write TFRecord training clips.

Exit codes: 0 when every source was prepared; 1 when some could not be read (they are listed, with their error, in
OUT_DIR/manifest.json and on stderr; the others are prepared); 2 for a usage error (bad folder, bad flag).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tfvr.data.layouts import LAYOUTS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    p.epilog = ("Layouts: videos (video files; scene split + sampling + fade/uniform-frame filter), frames (plain "
                "frame folders), gopro, reds (REDS4 000/011/015/020 held out as val), vimeo90k (sep_trainlist / "
                "sep_testlist), vid4 (GT + BIx4), davis (DAVIS / YouTube-VOS JPEGImages folders or zips). "
                "Writes OUT_DIR/<split>-NNNNN-of-NNNNN.tfrecord and OUT_DIR/manifest.json.")
    p.add_argument("src", metavar="SRC_DIR", help="folder of video files, or of a supported frame-folder layout")
    p.add_argument("out", metavar="OUT_DIR", help="output folder (must not exist, or be empty, unless --overwrite)")
    p.add_argument("--threshold", type=float, default=25.0,
                   help="PySceneDetect ContentDetector threshold (higher = fewer scene cuts)")
    p.add_argument("--interval", type=float, default=0.1, help="seconds between sampled frames within a scene")
    p.add_argument("--clip-len", type=int, default=10,
                   help="sampled frames per clip (0 = one clip per run of kept frames / per sequence)")
    p.add_argument("--clip-stride", type=int, default=0,
                   help="frames between the starts of consecutive clips (0 = clip-len, no overlap)")
    p.add_argument("--min-scene-len", type=int, default=3, help="cuts closer than this many frames are merged")
    p.add_argument("--fade-rate", type=float, default=0.5,
                   help="drop frames whose log mean luminance changes faster than this per second (fades)")
    p.add_argument("--uniform-max", type=float, default=0.9,
                   help="drop frames with at least this fraction of pixels within ±12 grey levels of the median")
    p.add_argument("--no-filter", action="store_true", help="keep fade and near-uniform frames")
    p.add_argument("--layout", default="auto", choices=["auto", *LAYOUTS, "youtube-vos"],
                   help="layout of SRC_DIR (auto: guessed from its contents)")
    p.add_argument("--num-shards", type=int, default=0,
                   help="shards per split (0 = about one per 128 MB of clips)")
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help="hold out this fraction of the training sources (whole videos) as the val split")
    p.add_argument("--seed", type=int, default=0, help="seed of the --val-fraction choice")
    p.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--runner", choices=["direct", "beam"], default="direct",
                   help="direct: this process (no extra packages); beam: an Apache Beam pipeline (pip install "
                        "'tfvr[beam]'), on Beam's DirectRunner with --workers processes unless --beam-options names "
                        "another runner; the output is the same")
    p.add_argument("--workers", type=int, default=2, help="--runner beam: local worker processes")
    p.add_argument("--threads-per-worker", type=int, default=None, metavar="N",
                   help="decode / OpenCV threads of each worker process (0 = the libraries' default, a thread per "
                        "core; default: --runner direct 0, --runner beam locally the cores divided by --workers, "
                        "on another Beam runner 0); changes no output")
    p.add_argument("--beam-options", default="", metavar="'--runner=... ...'",
                   help="--runner beam: Beam pipeline options, one shell-quoted string (e.g. '--runner=FlinkRunner "
                        "--flink_master=host:8081 --environment_type=LOOPBACK')")
    p.add_argument("--reds-input", default="auto", choices=["auto", "sharp_bicubic", "blur", "blur_comp",
                                                            "blur_bicubic"],
                   help="REDS layout: which input is paired with the sharp frames (train_sharp_bicubic/X4 -> SR, "
                        "train_blur -> deblur, train_blur_comp -> deblurcomp, train_blur_bicubic/X4 -> SRblur; "
                        "auto: sharp_bicubic when present); select it in training with data.lq_kind")


def run(args: argparse.Namespace) -> int:
    # FFmpeg's own complaints about a broken file ("moov atom not found") name no file; the error list below does.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    from tfvr.data.prepare import prepare
    from tfvr.data.scenes import SceneSettings

    settings = SceneSettings(threshold=args.threshold, interval=args.interval, clip_len=args.clip_len,
                             clip_stride=args.clip_stride, min_scene_len=args.min_scene_len,
                             fade_rate=args.fade_rate, uniform_max=args.uniform_max,
                             filter_frames=not args.no_filter)
    if args.runner == "beam":
        import shlex

        from tfvr.data.beam_prepare import prepare_beam

        result = prepare_beam(args.src, args.out, layout=args.layout, settings=settings, num_shards=args.num_shards,
                              val_fraction=args.val_fraction, seed=args.seed, overwrite=args.overwrite,
                              workers=args.workers, beam_options=shlex.split(args.beam_options),
                              reds_input=args.reds_input, threads_per_worker=args.threads_per_worker)
    else:
        if args.threads_per_worker:
            from tfvr.data import video_io

            video_io.set_threads(args.threads_per_worker)
        result = prepare(args.src, args.out, layout=args.layout, settings=settings, num_shards=args.num_shards,
                         val_fraction=args.val_fraction, seed=args.seed, overwrite=args.overwrite,
                         progress=not args.quiet, reds_input=args.reds_input)
    m = result.manifest
    splits = ", ".join(f"{name}: {s['clips']} clips in {len(s['shards'])} shards" for name, s in m["splits"].items())
    c = m["counts"]
    print(f"{result.out_dir}: {c['clips']} clips, {c['frames']} frames from {c['sources'] - c['failed']} of "
          f"{c['sources']} sources ({m['layout']} layout; {splits}); dropped {c['dropped_frames']['fade']} fade and "
          f"{c['dropped_frames']['uniform']} near-uniform frames, {c['dropped_scenes']} short scenes")
    if result.failed:
        print(f"tfvr prepare: error: {len(result.failed)} of {c['sources']} sources could not be read "
              f"(listed in {result.out_dir / 'manifest.json'}):", file=sys.stderr)
        for r in result.failed:
            msg = r.error or ""
            for prefix in (f"{Path(args.src) / r.path}: ", f"{os.path.realpath(Path(args.src) / r.path)}: ", f"{r.path}: "):
                if msg.startswith(prefix):
                    msg = msg[len(prefix):]
                    break
            print(f"  {r.path}: {msg}", file=sys.stderr)
        return 1
    if c["clips"] == 0:
        print("tfvr prepare: error: no clips were made (scenes too short for --clip-len, or every frame filtered)",
              file=sys.stderr)
        return 1
    return 0
