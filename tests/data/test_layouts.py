"""Layout readers, each on a tiny fake copy of the public layout made here."""

import zipfile

import cv2
import numpy as np
import pytest

from tfvr.data import layouts, records
from tfvr.errors import UserError


def _png(path, h=8, w=12, seed=0, ext=".png"):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    cv2.imwrite(str(path.with_suffix(ext)), img)
    return img


def _seq(folder, n, h=8, w=12, ext=".png", fmt="{:08d}"):
    for i in range(n):
        _png(folder / fmt.format(i), h, w, seed=i, ext=ext)


def test_gopro(tmp_path):
    for split, seqs in (("train", ["GOPR0372_07_00", "GOPR0374_11_00"]), ("test", ["GOPR0384_11_00"])):
        for s in seqs:
            _seq(tmp_path / split / s / "sharp", 3, fmt="{:06d}")
            _seq(tmp_path / split / s / "blur", 3, fmt="{:06d}")
            _seq(tmp_path / split / s / "blur_gamma", 3, fmt="{:06d}")
    assert layouts.detect_layout(tmp_path) == "gopro"
    name, srcs = layouts.scan(tmp_path)
    assert name == "gopro"
    assert [(s.name, s.split) for s in srcs] == [("test/GOPR0384_11_00", "val"), ("train/GOPR0372_07_00", "train"),
                                                 ("train/GOPR0374_11_00", "train")]
    s = srcs[1]
    assert s.lq_kind == "blur" and [p.parent.name for p in s.lq] == ["blur"] * 3
    assert [p.name for p in s.frames] == ["000000.png", "000001.png", "000002.png"]


def test_reds_holds_out_reds4(tmp_path):
    for clip in ("000", "001", "011", "015", "020", "021"):
        _seq(tmp_path / "train_sharp" / clip, 4, 16, 16)
        _seq(tmp_path / "train_sharp_bicubic" / "X4" / clip, 4, 4, 4)
    _seq(tmp_path / "val_sharp" / "000", 4, 16, 16)
    assert layouts.detect_layout(tmp_path) == "reds"
    _, srcs = layouts.scan(tmp_path, "reds")
    split = {s.name: s.split for s in srcs}
    assert {k for k, v in split.items() if v == "val"} == {f"train_sharp/{c}" for c in layouts.REDS4}
    assert split["train_sharp/001"] == "train" and split["val_sharp/000"] == "train"
    s = next(s for s in srcs if s.name == "train_sharp/001")
    assert s.lq_kind == "lr" and s.lq_scale == 4 and len(s.lq) == 4
    assert next(s for s in srcs if s.name == "val_sharp/000").lq is None  # no val_sharp_bicubic here


def test_vimeo90k_septuplets(tmp_path):
    root = tmp_path / "vimeo_septuplet"
    for key in ("00001/0001", "00001/0002", "00002/0001"):
        for i in range(1, 8):
            _png(root / "sequences" / key / f"im{i}", 16, 16, seed=i)
            _png(tmp_path / "vimeo_septuplet_matlabLRx4" / "sequences" / key / f"im{i}", 4, 4, seed=i)
    (root / "sep_trainlist.txt").write_text("00001/0001\n00002/0001\n")
    (root / "sep_testlist.txt").write_text("00001/0002\n")
    assert layouts.detect_layout(root) == "vimeo90k"
    _, srcs = layouts.scan(root)
    assert [(s.name, s.split) for s in srcs] == [("sequences/00001/0001", "train"), ("sequences/00002/0001", "train"),
                                                 ("sequences/00001/0002", "val")]
    assert all(s.whole and len(s.frames) == 7 and len(s.lq) == 7 and s.lq_scale == 4 for s in srcs)
    assert [p.name for p in srcs[0].frames] == [f"im{i}.png" for i in range(1, 8)]
    (root / "sep_testlist.txt").write_text("00009/0009\n")
    with pytest.raises(UserError, match="00009/0009"):
        layouts.scan(root)


def test_vid4(tmp_path):
    for clip in ("calendar", "city"):
        _seq(tmp_path / "GT" / clip, 3, 16, 20)
        _seq(tmp_path / "BIx4" / clip, 3, 4, 5)
    assert layouts.detect_layout(tmp_path) == "vid4"
    _, srcs = layouts.scan(tmp_path)
    assert [(s.name, s.split, s.lq_kind, s.lq_scale) for s in srcs] == [
        ("GT/calendar", "val", "lr", 4), ("GT/city", "val", "lr", 4)]


def test_davis_folders_and_imagesets(tmp_path):
    for v in ("bear", "blackswan", "camel"):
        _seq(tmp_path / "JPEGImages" / "480p" / v, 3, ext=".jpg", fmt="{:05d}")
    (tmp_path / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "ImageSets" / "2017" / "train.txt").write_text("bear\ncamel\n")
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_text("blackswan\n")
    assert layouts.detect_layout(tmp_path) == "davis"
    _, srcs = layouts.scan(tmp_path)
    assert [(s.name, s.split) for s in srcs] == [("JPEGImages/480p/bear", "train"),
                                                 ("JPEGImages/480p/blackswan", "val"),
                                                 ("JPEGImages/480p/camel", "train")]
    data, (h, w) = layouts.load_png(srcs[0].frames[0])
    assert (h, w) == (8, 12) and records.png_rgb8_size(data) == (8, 12)


def test_youtube_vos_zips(tmp_path):
    # STTN's layout: one zip of JPEGs per video, train/ and valid/ parts.
    for part, vids in (("train_all_frames", ["0a2f2bd294", "0a7a2514aa"]), ("valid_all_frames", ["0b6f9105fc"])):
        d = tmp_path / part / "JPEGImages"
        d.mkdir(parents=True)
        for v in vids:
            with zipfile.ZipFile(d / f"{v}.zip", "w") as z:
                for i in (10, 2, 1):  # stored out of order: frames are sorted naturally
                    img = np.full((8, 12, 3), i * 20, np.uint8)
                    ok, buf = cv2.imencode(".jpg", img)
                    z.writestr(f"{v}/{i:05d}.jpg", buf.tobytes())
    assert layouts.detect_layout(tmp_path) == "davis"
    _, srcs = layouts.scan(tmp_path, "youtube-vos")
    assert [(s.name, s.split) for s in srcs] == [("train_all_frames/JPEGImages/0a2f2bd294", "train"),
                                                 ("train_all_frames/JPEGImages/0a7a2514aa", "train"),
                                                 ("valid_all_frames/JPEGImages/0b6f9105fc", "val")]
    assert [m.member.rsplit("/", 1)[1] for m in srcs[0].frames] == ["00001.jpg", "00002.jpg", "00010.jpg"]
    png, _ = layouts.load_png(srcs[0].frames[2])
    assert abs(int(records.decode_png(png).mean()) - 200) <= 2


def test_plain_frames_with_split_folders(tmp_path):
    _seq(tmp_path / "train" / "a", 3)
    _seq(tmp_path / "train" / "b" / "c", 2)
    _seq(tmp_path / "val" / "d", 2)
    _seq(tmp_path / "misc", 2)
    assert layouts.detect_layout(tmp_path) == "frames"
    _, srcs = layouts.scan(tmp_path)
    assert [(s.name, s.split, len(s.frames)) for s in srcs] == [
        ("misc", "train", 2), ("train/a", "train", 3), ("train/b/c", "train", 2), ("val/d", "val", 2)]


def test_videos_and_split_folders(tmp_path):
    for rel in ("a.mp4", "train/b.MOV", "val/c.mkv", "test/d.avi", "notes.txt", ".hidden.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert layouts.detect_layout(tmp_path) == "videos"
    _, srcs = layouts.scan(tmp_path)
    assert [(s.name, s.split) for s in srcs] == [("a.mp4", "train"), ("test/d.avi", "test"), ("train/b.MOV", "train"),
                                                 ("val/c.mkv", "val")]


def test_scan_errors(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        layouts.scan(tmp_path / "missing")
    with pytest.raises(UserError, match="no video files or frame folders"):
        layouts.scan(tmp_path)
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(UserError, match="unknown layout"):
        layouts.scan(tmp_path, "kinetics")
    with pytest.raises(UserError, match="no frame sequences"):
        layouts.scan(tmp_path, "vid4")


def test_assign_val_is_stable(tmp_path):
    def sources(names):
        return [layouts.VideoSource(path=tmp_path / n, name=n) for n in names]

    a = sources([f"v{i}.mp4" for i in range(10)])
    layouts.assign_val(a, 0.2)
    val = {s.name for s in a if s.split == "val"}
    assert len(val) == 2
    b = sources([f"v{i}.mp4" for i in range(10)] + ["new.mp4"])
    layouts.assign_val(b, 0.2)
    # Adding a file moves at most one video between the splits (hash ranking, not position).
    assert len(val ^ {s.name for s in b if s.split == "val"}) <= 1
    one = sources(["only.mp4"])
    layouts.assign_val(one, 0.5)
    assert one[0].split == "train"
    with pytest.raises(UserError):
        layouts.assign_val(sources(["a", "b"]), 1.0)


def test_load_png_passthrough_and_conversion(tmp_path):
    img = _png(tmp_path / "f", 6, 7)
    data, size = layouts.load_png(tmp_path / "f.png")
    assert data == (tmp_path / "f.png").read_bytes() and size == (6, 7)  # 8-bit RGB PNG stored as it is
    np.testing.assert_array_equal(records.decode_png(data), img[..., ::-1])  # cv2 wrote BGR
    gray = np.arange(42, dtype=np.uint8).reshape(6, 7)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    data, size = layouts.load_png(tmp_path / "g.png")
    np.testing.assert_array_equal(records.decode_png(data), np.repeat(gray[..., None], 3, -1))
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(UserError, match="bad.png"):
        layouts.load_png(tmp_path / "bad.png")
