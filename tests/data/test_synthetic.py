import cv2
import numpy as np
import pytest

from tfvr.data import synthetic, video_io


@pytest.fixture(scope="module")
def clip():
    return synthetic.generate(seed=3, num_frames=12, height=48, width=64)


def test_shapes_dtypes_and_classes(clip):
    assert clip.frames.shape == (12, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.blurred.shape == clip.frames.shape and clip.blurred.dtype == np.uint8
    assert clip.labels.shape == (12, 48, 64) and clip.labels.dtype == np.int32
    assert clip.instances.shape == (12, 48, 64) and clip.instances.dtype == np.int32
    assert synthetic.NUM_CLASSES == len(synthetic.CLASS_NAMES)
    assert clip.labels.min() >= 0 and clip.labels.max() < synthetic.NUM_CLASSES
    assert set(synthetic.FOREGROUND_CLASSES).isdisjoint(synthetic.BACKGROUND_CLASSES)
    # Instance ids and labels agree: background pixels have a background class, object pixels their own class.
    bg = clip.instances == 0
    assert np.isin(clip.labels[bg], synthetic.BACKGROUND_CLASSES).all()
    for iid in np.unique(clip.instances[~bg]):
        assert (clip.labels[clip.instances == iid] == clip.instance_classes[iid]).all()
    assert clip.instance_classes[0] == -1 and len(clip.instance_classes) >= 4  # >= 3 objects
    assert clip.cuts == () and clip.scenes == [(0, 12)]


def test_deterministic_and_seed_dependent():
    a = synthetic.generate(seed=11, num_frames=4, height=32, width=40)
    b = synthetic.generate(seed=11, num_frames=4, height=32, width=40)
    c = synthetic.generate(seed=12, num_frames=4, height=32, width=40)
    for name in ("frames", "blurred", "labels", "instances"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert np.abs(a.frames.astype(int) - c.frames).mean() > 10


def test_things_move_and_occlude(clip):
    # Camera and objects move: consecutive frames differ, and object masks change over time.
    assert np.abs(np.diff(clip.frames.astype(np.int16), axis=0)).mean() > 3
    assert (clip.instances[0] != clip.instances[-1]).mean() > 0.01
    # Over a few seeds, some object hides part of another one at some frame (visible area shrinks while it
    # stays inside the frame) — checked loosely: objects overlap in their union of per-frame masks.
    overlaps = 0
    for seed in range(4):
        v = synthetic.generate(seed=seed, num_frames=16, height=48, width=48, num_objects=5, blur=False)
        for iid in range(1, len(v.instance_classes)):
            area = (v.instances == iid).sum(axis=(1, 2))
            overlaps += int((area[1:] < 0.7 * area[:-1]).any())
    assert overlaps > 0


def test_motion_blur_is_the_gopro_average():
    sharp_only = synthetic.generate(seed=5, num_frames=3, height=32, width=32, subframes=1)
    np.testing.assert_array_equal(sharp_only.blurred, sharp_only.frames)
    still = synthetic.generate(seed=5, num_frames=3, height=32, width=32, motion=0.0)
    assert np.abs(still.blurred.astype(int) - still.frames).max() <= 1
    moving = synthetic.generate(seed=5, num_frames=6, height=64, width=64, subframes=9, motion=2.0)

    def sharpness(frames):
        return np.mean([cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_32F).std() for f in frames])

    assert sharpness(moving.blurred) < 0.85 * sharpness(moving.frames)
    # Without blur rendering the sharp frames are the same.
    no_blur = synthetic.generate(seed=5, num_frames=6, height=64, width=64, subframes=9, motion=2.0, blur=False)
    assert no_blur.blurred is None
    np.testing.assert_array_equal(no_blur.frames, moving.frames)


def test_texture_has_high_frequency_detail(clip):
    # x2 bicubic down/up must lose real detail (SR is not trivial) ...
    f = clip.frames[0].astype(np.float32)
    down = cv2.resize(f, (32, 24), interpolation=cv2.INTER_AREA)
    up = cv2.resize(down, (64, 48), interpolation=cv2.INTER_CUBIC)
    psnr = 10 * np.log10(255.0**2 / np.mean((up - f) ** 2))
    assert psnr < 32, psnr
    # ... yet the image is structured, not white noise: neighbouring pixels correlate.
    g = f.mean(-1)
    corr = np.corrcoef(g[:, :-1].ravel(), g[:, 1:].ravel())[0, 1]
    assert 0.3 < corr < 0.98, corr


def test_cuts_and_fades():
    v = synthetic.generate(seed=2, num_frames=20, height=32, width=48, cuts=2, fade_frames=3)
    assert len(v.cuts) == 2 and all(2 <= c <= 18 for c in v.cuts)
    assert v.scenes[0][0] == 0 and v.scenes[-1][1] == 20
    diffs = np.abs(np.diff(v.frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    for c in v.cuts:  # the cut is the biggest change around it
        neighbours = [diffs[i] for i in (c - 2, c) if 0 <= i < len(diffs)]
        assert diffs[c - 1] > 1.5 * max(neighbours)
    # Objects of different scenes have different ids.
    ids = [set(np.unique(v.instances[s:e])) - {0} for s, e in v.scenes]
    assert ids[0].isdisjoint(ids[1]) and ids[1].isdisjoint(ids[2])
    assert v.fade[0] < v.fade[1] < v.fade[2] < 1 and v.fade[-1] < 1 and (v.fade[3:-3] == 1).all()
    assert v.frames[0].mean() < 0.5 * v.frames[5].mean()
    explicit = synthetic.generate(seed=2, num_frames=10, height=16, width=16, cuts=[4], blur=False)
    assert explicit.cuts == (4,)
    with pytest.raises(ValueError):
        synthetic.generate(seed=2, num_frames=10, height=16, width=16, cuts=[0])


def test_odd_size_and_write_mp4(tmp_path):
    v = synthetic.generate(seed=7, num_frames=6, height=37, width=51, blur=False)
    assert v.frames.shape == (6, 37, 51, 3)
    path = synthetic.write_mp4(v, tmp_path / "clip.mp4")
    back = video_io.read_video(path)
    assert back.frames.shape == (6, 38, 52, 3) and back.fps == pytest.approx(24.0)
    assert np.abs(back.frames[:, :37, :51].astype(float) - v.frames).mean() < 12
    with pytest.raises(ValueError, match="blurred"):
        synthetic.write_mp4(v, tmp_path / "b.mp4", which="blurred")
