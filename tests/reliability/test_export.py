"""Issue 12, `tfvr export`: case 4 (an --out that is, lies inside or contains the training run is refused even with
--overwrite; a folder tfvr did not write is never replaced), case 9's rule for exports (the user's umask, not
mkdtemp's 0700, so TF Serving running as another user can read it), case 10 (a full disk: one line, exit 2,
nothing half-written)."""

import os
import stat

import pytest

import tests.training.toy  # noqa: F401  (registers the toy task in this process: `tfvr export` looks it up)
from tests.reliability._fs import fill, small_tmpfs
from tfvr.cli import main
from tfvr.safety import MARKER


@pytest.fixture(scope="module")
def run(toy_run):
    return toy_run[0]  # tests/conftest.py: the session's toy training run (3 steps, checkpoints, its own export)


def _snapshot(d):
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}


def test_export_onto_or_around_the_run_is_refused(run, capsys):
    before = _snapshot(run)
    for out, why in [(run, "would overwrite the input"), (run / "export2", "inside the input folder"),
                     (run.parent, "contains the input")]:
        assert main(["export", "--workdir", str(run), "--out", str(out), "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tfvr export: error:") and why in err and err.count("\n") == 1, err
    assert _snapshot(run) == before  # checkpoints, config.json, tb/ untouched


def test_export_gets_the_umask_and_replaces_only_its_own_folder(run, tmp_path, capsys):
    foreign = tmp_path / "models"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    assert main(["export", "--workdir", str(run), "--out", str(foreign), "--overwrite"]) == 2
    assert "did not write" in capsys.readouterr().err and (foreign / "keep.txt").exists()

    out = tmp_path / "saved" / "toy" / "1"
    old = os.umask(0o022)
    try:
        assert main(["export", "--workdir", str(run), "--out", str(out)]) == 0
        assert main(["export", "--workdir", str(run), "--out", str(out), "--overwrite"]) == 0
    finally:
        os.umask(old)
    assert (out / "saved_model.pb").is_file() and (out / MARKER).is_file()
    modes = {stat.S_IMODE(os.stat(os.path.join(r, n)).st_mode)
             for r, ds, fs in os.walk(out) for n in ds + fs if not os.path.isdir(os.path.join(r, n))}
    dmodes = {stat.S_IMODE(os.stat(r).st_mode) for r, _, _ in os.walk(out)}
    assert modes == {0o644} and dmodes == {0o755}, (modes, dmodes)
    assert sorted(p.name for p in out.parent.iterdir()) == ["1"]  # no temporary or old folder left


def test_export_onto_a_full_disk_is_one_line(run, tmp_path, capsys):
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        fill(disk, leave=16 << 10)
        assert main(["export", "--workdir", str(run), "--out", str(disk / "1")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tfvr export: error:") and err.count("\n") == 1, err
        assert "no space left" in err.lower(), err
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
