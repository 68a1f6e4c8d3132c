"""Spatial tiling with overlap for every restoration model (window `[T, H, W, 3]` → centre frame `[sH, sW, 3]`).

Frames larger than S×S are cut into S×S tiles overlapping by `overlap` pixels (all tiles of a frame have one size:
the last row / column is flush with the border). Each tile is restored with its margin and only its central part
is kept (the seams lie in the middle of the overlaps), which bounds memory for large frames. Tiles go through the
model in batches of `tile_batch`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of equal tiles covering [0, size): step tile - overlap, the last one flush with the end."""
    if tile >= size:
        return [0]
    step = max(tile - overlap, 1)
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def owned(starts: list[int], tile: int, size: int) -> list[tuple[int, int]]:
    """[lo, hi) of the output each tile keeps: boundaries in the middle of each overlap."""
    bounds = [0]
    for a, b in zip(starts[:-1], starts[1:]):
        bounds.append((b + a + tile) // 2)  # middle of the overlap [b, a + tile)
    bounds.append(size)
    return [(bounds[i], bounds[i + 1]) for i in range(len(starts))]


def tiles(h: int, w: int, tile: int, overlap: int):
    """[(y, x, th, tw, (y0, y1), (x0, x1))] of one frame: tile origin and size, and the part it keeps."""
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    oy, ox = owned(ys, th, h), owned(xs, tw, w)
    return [(ys[i], xs[j], th, tw, oy[i], ox[j]) for i in range(len(ys)) for j in range(len(xs))]


def check_tiling(tile: int, overlap: int, tile_batch: int = 1) -> None:
    from tfvr.errors import UserError

    if tile < 0 or overlap < 0 or tile_batch < 1:
        raise UserError("--tile and --tile-overlap must be >= 0 and --tile-batch >= 1")
    if tile and overlap >= tile:
        raise UserError(f"--tile-overlap ({overlap}) must be smaller than --tile ({tile})")


def restore_window(restore: Callable[[np.ndarray], np.ndarray], window: np.ndarray, scale: int, tile: int = 0,
                   overlap: int = 32, tile_batch: int = 4) -> np.ndarray:
    """The restored centre frame `[H·s, W·s, 3]` of one window `[T, H, W, 3]` with `restore(uint8 [B, T, h, w, 3])
    -> uint8 [B, h·s, w·s, 3]`, tiled if `tile` > 0 and the frame is larger than the tile."""
    _, h, w, _ = window.shape
    s = int(scale)
    if tile <= 0 or (h <= tile and w <= tile):
        return np.asarray(restore(window[None]))[0]
    jobs = tiles(h, w, tile, overlap)
    out = np.empty((h * s, w * s, 3), np.uint8)
    step = max(tile_batch, 1)
    for b in range(0, len(jobs), step):
        chunk = jobs[b:b + step]
        batch = np.stack([window[:, y:y + th, x:x + tw] for y, x, th, tw, _, _ in chunk])
        res = np.asarray(restore(batch))
        for (y, x, _, _, (y0, y1), (x0, x1)), r in zip(chunk, res):
            out[y0 * s:y1 * s, x0 * s:x1 * s] = r[(y0 - y) * s:(y1 - y) * s, (x0 - x) * s:(x1 - x) * s]
    return out
