"""Issue 12, `tfvr prepare`: case 2 (an output that is / contains / lies inside the source, or a folder prepare
did not write, is refused even with --overwrite), case 10 (a symlink loop in the source and a full disk: one
line, exit 2, nothing half-written), and the umask of the prepared folder (case 9's rule)."""

import os
import stat

import pytest

from tests.reliability._fs import fill, one_error_line, small_tmpfs, tfvr
from tfvr.cli import main
from tfvr.data import synthetic
from tfvr.safety import MARKER

ARGS = ["--clip-len", "5", "--quiet", "--num-shards", "1"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("pdanger") / "videos"
    d.mkdir()
    synthetic.write_mp4(synthetic.generate(3, 12, 32, 32, fps=10.0), d / "a.mp4", fps=10.0)
    return d


def _snapshot(d):
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_output_around_the_source_is_refused_and_nothing_is_deleted(videos, capsys):
    parent = videos.parent
    (parent / "notes.txt").write_text("mine")
    before = _snapshot(parent)
    # the command: OUT contains SRC (it deleted the source videos before)
    for out, why in [(parent, "contains the input"), (videos, "would overwrite the input"),
                     (videos / "clips", "inside the input folder")]:
        assert main(["prepare", str(videos), str(out), "--overwrite", *ARGS]) == 2
        err = capsys.readouterr().err
        assert why in err and err.count("\n") == 1, err
    assert _snapshot(parent) == before


def test_overwrite_replaces_only_what_prepare_wrote(videos, tmp_path, capsys):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"jpeg")
    assert main(["prepare", str(videos), str(foreign), "--overwrite", *ARGS]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (foreign / "holiday.jpg").read_bytes() == b"jpeg"

    old = os.umask(0o022)
    try:
        out = tmp_path / "clips"
        assert main(["prepare", str(videos), str(out), *ARGS]) == 0
        assert (out / MARKER).is_file()
        assert main(["prepare", str(videos), str(out), "--overwrite", *ARGS]) == 0  # its own folder: replaced
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755  # not mkdtemp's 0700
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o644}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips", "photos"]  # no temporaries left


def test_symlink_loop_in_the_source_is_one_line(videos, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.mp4").symlink_to(videos / "a.mp4")
    (src / "loop.mp4").symlink_to(src / "loop.mp4")  # a file symlink pointing at itself
    r = tfvr("prepare", src, tmp_path / "out", *ARGS)
    # prepare's contract for a source it cannot read: listed with its reason (one line), the others prepared,
    # exit 1 - before, the loop crashed the command with a traceback.
    assert r.returncode == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "  loop.mp4: cannot open it (too many levels of symbolic links)" in r.stderr.splitlines(), r.stderr
    assert "from 1 of 2 sources" in r.stdout


def test_disk_full_is_one_line_and_leaves_nothing(videos, tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    synthetic.write_mp4(synthetic.generate(5, 60, 96, 128, fps=10.0), big / "b.mp4", fps=10.0)
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        fill(disk, leave=64 << 10)
        r = tfvr("prepare", big, disk / "clips", *ARGS)
        assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
        line = one_error_line(r.stderr, "tfvr prepare")
        assert "no space left" in line and str(disk) in line, line
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no clips, no temporary folder
