"""Scene split, frame sampling and the fade / near-uniform frame filter, on generated .mp4 files."""

import numpy as np
import pytest

from tfvr.data import scenes, synthetic, video_io
from tfvr.errors import VideoReadError


def test_sample_indices():
    assert scenes.sample_indices(0, 10, fps=30, interval=0.1) == [0, 3, 6, 9]
    assert scenes.sample_indices(5, 9, fps=10, interval=0.1) == [5, 6, 7, 8]
    assert scenes.sample_indices(0, 5, fps=60, interval=0.01) == [0, 1, 2, 3, 4]  # shorter than a frame: all
    assert scenes.sample_indices(0, 12, fps=25, interval=0.1) == [0, 3, 5, 8, 10]  # 2.5 frames, rounded
    assert scenes.sample_indices(4, 4, fps=30, interval=0.1) == []


def test_runs_and_chunk():
    assert scenes.runs([True, True, False, True, False, False, True]) == [(0, 2), (3, 4), (6, 7)]
    assert scenes.runs([]) == []
    assert scenes.chunk(23, 10) == [(0, 10), (10, 20)]
    assert scenes.chunk(9, 10) == []
    assert scenes.chunk(12, 5, stride=3) == [(0, 5), (3, 8), (6, 11)]
    assert scenes.chunk(7, 0) == [(0, 7)]


def test_fade_flags():
    fps = 10.0
    lum = np.r_[np.linspace(5, 120, 8), np.full(20, 120.0) + np.random.default_rng(0).normal(0, 0.5, 20),
                np.linspace(120, 5, 8)]
    flags = scenes.fade_flags(lum, fps, rate=0.5)
    assert flags[:7].all() and flags[-7:].all()
    assert not flags[10:26].any()


def test_uniform_fraction():
    rng = np.random.default_rng(0)
    black = np.zeros((60, 80, 3), np.uint8)
    card = black.copy()
    card[25:32, 20:60] = 255  # a line of "title" text on black
    textured = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    assert scenes.uniform_fraction(black) == 1.0
    assert scenes.uniform_fraction(card) >= 0.9
    assert scenes.uniform_fraction(textured) < 0.5


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "cuts.mp4"
    video = synthetic.generate(3, 48, 64, 80, cuts=[17, 30], fps=10.0)
    synthetic.write_mp4(video, path, fps=10.0)
    return path, video


def test_detect_scenes_finds_the_generator_cuts(cut_video):
    path, video = cut_video
    assert scenes.detect_scenes(path) == [(0, 17), (17, 30), (30, 48)]


def test_detect_scenes_without_cuts_is_one_scene(tmp_path):
    path = tmp_path / "still.mp4"
    synthetic.write_mp4(synthetic.generate(1, 20, 48, 64, fps=10.0), path, fps=10.0)
    assert scenes.detect_scenes(path) == [(0, 20)]


def test_video_clips_never_straddle_a_cut(cut_video):
    path, _ = cut_video
    report = scenes.VideoReport(path=str(path))
    clips = list(scenes.video_clips(path, scenes.SceneSettings(clip_len=6, interval=0.1), report))
    bounds = [(0, 17), (17, 30), (30, 48)]
    assert report.scenes == [list(b) for b in bounds]
    assert report.num_frames == 48 and report.fps == pytest.approx(10.0)
    # 17 // 6 + 13 // 6 + 18 // 6 clips; consecutive frames, inside one scene
    assert [c.scene for c in clips] == [0, 0, 1, 1, 2, 2, 2]
    assert [c.clip for c in clips] == list(range(7))
    for c in clips:
        a, b = bounds[c.scene]
        assert a <= c.indices[0] and c.indices[-1] < b
        assert np.all(np.diff(c.indices) == 1)
        assert len(c.frames) == 6 and c.frames[0].shape == (64, 80, 3)
    assert report.clips == 7 and report.dropped_fade == 0 and report.dropped_uniform == 0


def test_video_clips_interval_sampling(cut_video):
    path, _ = cut_video
    clips = list(scenes.video_clips(path, scenes.SceneSettings(clip_len=3, interval=0.2)))
    for c in clips:
        assert np.all(np.diff(c.indices) == 2)


def test_fade_and_black_frames_are_dropped(tmp_path):
    video = synthetic.generate(5, 40, 64, 80, fade_frames=6, fps=10.0)
    frames = video.frames.copy()
    frames[18:21] = 0  # three black frames in the middle of the scene
    path = tmp_path / "fade.mp4"
    video_io.write_video(path, frames, fps=10.0)
    report = scenes.VideoReport(path=str(path))
    clips = list(scenes.video_clips(path, scenes.SceneSettings(clip_len=5), report))
    kept = sorted(i for c in clips for i in c.indices)
    assert not set(kept) & set(range(0, 5)), "fade-in frames kept"
    assert not set(kept) & set(range(35, 40)), "fade-out frames kept"
    assert not set(kept) & {18, 19, 20}, "black frames kept"
    assert report.dropped_uniform >= 3 and report.dropped_fade >= 8
    # The black frames cut the scene in two runs: no clip spans them.
    for c in clips:
        assert c.indices[-1] < 18 or c.indices[0] > 20
    unfiltered = list(scenes.video_clips(path, scenes.SceneSettings(clip_len=5, filter_frames=False)))
    assert sum(len(c.indices) for c in unfiltered) > len(kept)


def test_short_scenes_are_dropped(cut_video):
    path, _ = cut_video
    report = scenes.VideoReport(path=str(path))
    clips = list(scenes.video_clips(path, scenes.SceneSettings(clip_len=15), report))
    assert [c.scene for c in clips] == [0, 2]  # the 13-frame middle scene is too short
    assert report.dropped_scenes == 1


def test_broken_video_raises_naming_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    with pytest.raises(VideoReadError, match="broken.mp4"):
        list(scenes.video_clips(bad, scenes.SceneSettings()))


def test_real_camera_video(tmp_path):
    """The real clip in ../shared/data (432x240, 24 fps): no false cuts or drops on real footage; a cut to other
    content is found."""
    from tests.helpers import SHARED, unavailable

    path = SHARED / "data" / "schoolgirls" / "video.mp4"
    if not path.exists():
        unavailable(f"{path} not found")
    report = scenes.VideoReport(path=str(path))
    clips = list(scenes.video_clips(path, scenes.SceneSettings(clip_len=10, interval=0.1), report))
    assert report.scenes == [[0, 80]] and report.fps == pytest.approx(24.0)
    assert report.frames_sampled == len(scenes.sample_indices(0, 80, 24.0, 0.1)) == 34
    assert report.dropped_fade == report.dropped_uniform == 0 and len(clips) == 3
    assert clips[0].indices[:4] == [0, 2, 5, 7]  # every 2.4 frames
    real = video_io.read_video(path).frames[:40]
    other = synthetic.generate(9, 30, 240, 432, fps=24.0).frames
    joined = tmp_path / "joined.mp4"
    video_io.write_video(joined, np.concatenate([real, other]), fps=24.0)
    assert scenes.detect_scenes(joined) == [(0, 40), (40, 70)]
