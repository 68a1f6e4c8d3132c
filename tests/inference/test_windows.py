"""tfvr.inference.windows: BasicSR's padding modes (streamed), STTN-I's plan and both blends, vid2vid's rule."""

import numpy as np
import pytest

from tfvr.inference.windows import (PADDINGS, Blend, Vid2VidStream, frame_indices, last_window_of,
                                    reference_ids, sliding_windows, sttn_plan)


def basicsr_generate_frame_indices(crt_idx, max_frame_num, num_frames, padding="reflection"):
    """basicsr.data.data_util.generate_frame_indices (BasicSR 1.4.2), verbatim but for the asserts; tfvr's
    frame_indices was also compared with the installed basicsr 1.4.2 on 928 (centre, length, window, mode) cases."""
    max_frame_num = max_frame_num - 1
    num_pad = num_frames // 2
    indices = []
    for i in range(crt_idx - num_pad, crt_idx + num_pad + 1):
        if i < 0:
            if padding == "replicate":
                pad_idx = 0
            elif padding == "reflection":
                pad_idx = -i
            elif padding == "reflection_circle":
                pad_idx = crt_idx + num_pad - i
            else:
                pad_idx = num_frames + i
        elif i > max_frame_num:
            if padding == "replicate":
                pad_idx = max_frame_num
            elif padding == "reflection":
                pad_idx = max_frame_num * 2 - i
            elif padding == "reflection_circle":
                pad_idx = (crt_idx - num_pad) - (i - max_frame_num)
            else:
                pad_idx = i - num_frames
        else:
            pad_idx = i
        indices.append(pad_idx)
    return indices


@pytest.mark.parametrize("padding", ["replicate", "reflection", "reflection_circle", "circle"])
def test_frame_indices_are_basicsr(padding):
    for length in (5, 7, 12):
        for window in (3, 5):
            for c in range(length):
                assert frame_indices(c, length, window, padding) == \
                    basicsr_generate_frame_indices(c, length, window, padding)
    assert frame_indices(1, 100, 5, "new_info") == frame_indices(1, 100, 5, "reflection_circle")


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("length", [1, 2, 4, 9])
@pytest.mark.parametrize("radius", [0, 1, 2])
def test_streamed_windows_are_the_indexed_ones(padding, length, radius):
    frames = [np.full((1, 1, 3), i, np.uint8) for i in range(length)]
    held = []

    def source():
        for f in frames:
            held.append(len(held))
            yield f

    got = []
    for c, w in enumerate(sliding_windows(source(), radius, padding)):
        assert len(held) <= c + 2 * radius + 1  # streamed: never more than 2r frames read ahead
        got.append(w[:, 0, 0, 0].tolist())
    want = [frame_indices(c, length, 2 * radius + 1, padding) for c in range(length)]
    assert got == want


def test_plan_and_reference_subsampling():
    plan = sttn_plan(12, 5, 10)
    assert plan == [([0, 1, 2, 3, 4, 5], [10]), ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], []),
                    ([5, 6, 7, 8, 9, 10, 11], [0])]
    assert reference_ids(plan) == [0, 10]
    long = sttn_plan(1000, 5, 10, max_refs=8)
    assert all(len(refs) <= 8 for _, refs in long)
    assert long[0][1][0] == 10 and long[0][1][-1] == 990  # spread over the whole video
    for i in range(12):
        last = last_window_of(i, 12, 5)
        assert i in plan[last][0] and all(i not in n for n, _ in plan[last + 1:])


def test_blends():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (4, 5, 3), dtype=np.uint8) for _ in range(3)]
    mean = Blend("mean")
    authors = Blend("authors")
    for im in imgs:
        mean.add(im)
        authors.add(im)
    np.testing.assert_array_equal(mean.result(), np.round(np.mean(np.stack(imgs).astype(float), 0)).astype(np.uint8))
    # researchmm/STTN test.py: comp = img first, then comp.astype(float32) * 0.5 + img.astype(float32) * 0.5, uint8 at the end
    comp = imgs[0]
    for im in imgs[1:]:
        comp = comp.astype(np.float32) * 0.5 + im.astype(np.float32) * 0.5
    np.testing.assert_array_equal(authors.result(), np.array(comp).astype(np.uint8))
    assert not np.array_equal(mean.result(), authors.result())
    with pytest.raises(ValueError):
        Blend("median")


def test_vid2vid_stream_rule():
    s = Vid2VidStream(3)
    lab = [np.full((2, 2), i, np.int32) for i in range(4)]
    out = [np.full((2, 2, 3), 10 + i, np.uint8) for i in range(4)]
    w, prev, n, _ = s.step(lab[0])
    assert w[:, 0, 0].tolist() == [0, 0, 0] and n == 0 and prev.shape == (2, 2, 2, 3) and not prev.any()
    s.push(out[0])
    w, prev, n, _ = s.step(lab[1])
    assert w[:, 0, 0].tolist() == [0, 0, 1] and n == 1 and prev[:, 0, 0, 0].tolist() == [0, 10]
    s.push(out[1])
    w, prev, n, _ = s.step(lab[2])
    assert w[:, 0, 0].tolist() == [0, 1, 2] and n == 2 and prev[:, 0, 0, 0].tolist() == [10, 11]
    s.push(out[2])
    w, prev, n, _ = s.step(lab[3])
    assert w[:, 0, 0].tolist() == [1, 2, 3] and n == 2 and prev[:, 0, 0, 0].tolist() == [11, 12]
