"""The streamed STTN-I scheme equals researchmm/STTN test.py's in-memory loop (both blends), with the reference
frames cached or re-read."""

import numpy as np
import pytest

from tfvr.inference.inpaint import MaskSource, inpaint_stream
from tfvr.inference.windows import sttn_plan


class FakeModel:
    """Composites a window-dependent 'prediction' into the hole, like the SavedModel does."""

    size = (8, 10)

    def __init__(self):
        self.calls = []

    def inpaint(self, frames, masks):
        self.calls.append(len(frames))
        pred = (frames.astype(np.int64).sum(axis=0, keepdims=True) // 7 + 13 * len(self.calls)) % 256
        pred = np.broadcast_to(pred, frames.shape).astype(np.uint8)
        return np.where(masks > 0, pred, frames)


def authors_loop(frames, holes, s, r):
    """test.py's main loop (numpy), for frames and dilated holes."""
    model = FakeModel()
    t = len(frames)
    comp = [None] * t
    for neighbors, refs in sttn_plan(t, s, r):
        ids = neighbors + refs
        out = model.inpaint(frames[ids], holes[ids].astype(np.uint8)[..., None] * 255)
        for j, idx in enumerate(neighbors):
            img = out[j]
            comp[idx] = img if comp[idx] is None else comp[idx].astype(np.float32) * 0.5 + img.astype(np.float32) * 0.5
    m = holes[..., None].astype(np.uint8)
    return np.stack([np.array(c).astype(np.uint8) * m[i] + frames[i] * (1 - m[i]) for i, c in enumerate(comp)])


@pytest.mark.parametrize("cache", [1 << 30, 0])
def test_streamed_authors_blend_equals_test_py(tmp_path, cache):
    import cv2

    rng = np.random.default_rng(0)
    t, h, w = 23, 8, 10
    frames = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    user = np.zeros((t, h, w), bool)
    user[:, 2:5, 3:7] = True
    for i in range(t):
        cv2.imwrite(str(tmp_path / f"{i:05d}.png"), user[i].astype(np.uint8) * 255)
    masks = MaskSource(tmp_path, t, h, w, dilate=0)
    reads = []

    def read(i):
        reads.append(i)
        return frames[i]

    got = np.stack(list(inpaint_stream(FakeModel(), iter(frames), t, masks, read, neighbor_stride=3, ref_length=4,
                                       blend="authors", ref_cache_bytes=cache)))
    np.testing.assert_array_equal(got, authors_loop(frames, user, 3, 4))
    if cache == 0:
        assert len(reads) > len(set(reads))  # re-read, not kept
    mean = np.stack(list(inpaint_stream(FakeModel(), iter(frames), t, masks, read, neighbor_stride=3, ref_length=4,
                                        blend="mean")))
    np.testing.assert_array_equal(mean[~user], frames[~user])
    assert not np.array_equal(mean, got)
