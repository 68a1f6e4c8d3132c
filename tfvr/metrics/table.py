"""Per-clip evaluation tables in the form of the EDVR paper's tables (and seed 001's notes).

For each clip: PSNR/SSIM averaged over all frames, over the centre frames (those with a full 2N+1 window) and over
the border frames (the first and last N, whose windows were padded). The last row averages the clips.

    scores = ClipScores("calendar")
    scores.add(frame_index, psnr, ssim, border=False)
    print(format_table([scores, ...]))
    json.dump(to_json([scores, ...]), f)
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass
class ClipScores:
    """PSNR/SSIM of every scored frame of one clip, with which frames are border frames."""

    name: str
    frames: list[int] = dataclasses.field(default_factory=list)
    psnr: list[float] = dataclasses.field(default_factory=list)
    ssim: list[float] = dataclasses.field(default_factory=list)
    border: list[bool] = dataclasses.field(default_factory=list)

    def add(self, frame: int, psnr: float, ssim: float, border: bool = False) -> None:
        self.frames.append(int(frame))
        self.psnr.append(float(psnr))
        self.ssim.append(float(ssim))
        self.border.append(bool(border))

    def summary(self) -> dict[str, float]:
        """psnr/ssim over all frames (`_avg`), centre frames (`_center`) and border frames (`_border`); NaN if none."""
        p, s, b = np.array(self.psnr, np.float64), np.array(self.ssim, np.float64), np.array(self.border, bool)
        out = {}
        for key, sel in (("avg", np.ones_like(b)), ("center", ~b), ("border", b)):
            out[f"psnr_{key}"] = float(p[sel].mean()) if sel.any() else math.nan
            out[f"ssim_{key}"] = float(s[sel].mean()) if sel.any() else math.nan
        out["frames"] = len(self.frames)
        return out


def average(clips: list[ClipScores]) -> dict[str, float]:
    """The mean of the clips' summaries (each clip weighs the same, as in the papers' tables)."""
    rows = [c.summary() for c in clips]
    keys = [k for k in rows[0] if k != "frames"] if rows else []
    out = {k: float(np.nanmean([r[k] for r in rows])) if any(not math.isnan(r[k]) for r in rows) else math.nan
           for k in keys}
    out["frames"] = sum(r["frames"] for r in rows)
    return out


def _fmt(v: float, digits: int) -> str:
    return "-" if math.isnan(v) else f"{v:.{digits}f}"


def format_table(clips: list[ClipScores]) -> str:
    """A fixed-width text table: one row per clip, then the average row."""
    head = f"{'clip':<16} {'frames':>6}  {'PSNR avg':>8} {'centre':>7} {'border':>7}  {'SSIM avg':>8} {'centre':>7} {'border':>7}"
    lines = [head, "-" * len(head)]
    rows = [(c.name, c.summary()) for c in clips] + ([("average", average(clips))] if clips else [])
    for i, (name, r) in enumerate(rows):
        if i == len(rows) - 1 and clips:
            lines.append("-" * len(head))
        lines.append(
            f"{name:<16} {r['frames']:>6}  {_fmt(r['psnr_avg'], 4):>8} {_fmt(r['psnr_center'], 4):>7} "
            f"{_fmt(r['psnr_border'], 4):>7}  {_fmt(r['ssim_avg'], 4):>8} {_fmt(r['ssim_center'], 4):>7} "
            f"{_fmt(r['ssim_border'], 4):>7}"
        )
    return "\n".join(lines)


def to_json(clips: list[ClipScores]) -> dict:
    """{"clips": {name: summary + per-frame lists}, "average": summary}; NaN becomes null."""

    def clean(d):
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

    return {
        "clips": {
            c.name: {**clean(c.summary()), "per_frame": {"frame": c.frames, "psnr": c.psnr, "ssim": c.ssim,
                                                         "border": c.border}}
            for c in clips
        },
        "average": clean(average(clips)) if clips else {},
    }
