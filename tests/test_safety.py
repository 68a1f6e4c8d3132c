"""tfvr.safety: the output guard and the atomic writers every command uses."""

import os
import re
import stat

import pytest

from tfvr import safety
from tfvr.safety import OutputError


def test_output_that_is_contains_or_lies_in_an_input_is_refused(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    v = d / "v.mp4"
    v.write_bytes(b"x")
    with pytest.raises(OutputError, match="would overwrite the input"):
        safety.check_output(v, [v], overwrite=True)
    with pytest.raises(OutputError, match="contains the input"):
        safety.check_output(d, [v], overwrite=True)
    with pytest.raises(OutputError, match="inside the input folder"):
        safety.check_output(d / "out", [d], overwrite=True)
    link = tmp_path / "link"
    link.symlink_to(d)
    with pytest.raises(OutputError, match="contains the input"):
        safety.check_output(link, [v], overwrite=True)


def test_existing_outputs_need_overwrite_and_foreign_folders_are_never_replaced(tmp_path):
    f = tmp_path / "o.txt"
    f.write_text("old")
    with pytest.raises(OutputError, match="already exists"):
        safety.check_output(f)
    safety.check_output(f, overwrite=True)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "a.jpg").write_bytes(b"x")
    with pytest.raises(OutputError, match="did not write"):
        safety.check_output(foreign, overwrite=True)
    with safety.atomic_dir(tmp_path / "mine") as t:
        (t / "0.png").write_bytes(b"p")
    safety.check_output(tmp_path / "mine", overwrite=True)  # tfvr's own folder: may be replaced


def test_workdirs_are_protected(tmp_path):
    wd = tmp_path / "run"
    (wd / "checkpoints").mkdir(parents=True)
    (wd / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-2"\n')
    with pytest.raises(OutputError, match="training run"):
        safety.check_output(wd, overwrite=True)
    with pytest.raises(OutputError, match="training run"):
        safety.check_output(wd / "export", overwrite=True)
    safety.check_output(wd / "eval.json", allow_inside_workdir=True)
    with pytest.raises(OutputError, match="contains the training run"):
        os.makedirs(tmp_path / "top")
        (tmp_path / "top" / safety.MARKER).write_text("")
        (tmp_path / "top" / "run" / "checkpoints").mkdir(parents=True)
        (tmp_path / "top" / "run" / "checkpoints" / "ckpt-0.index").write_bytes(b"")
        safety.check_output(tmp_path / "top", overwrite=True)


def test_a_folder_named_checkpoints_alone_is_not_a_run(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "resnet.pth").write_bytes(b"x")  # e.g. a PyTorch user's home
    assert not safety.is_workdir(tmp_path)
    safety.check_output(tmp_path / "out.mp4")


def test_atomic_writers_apply_umask_and_leave_nothing_on_failure(tmp_path):
    old = os.umask(0o022)
    try:
        with safety.atomic_dir(tmp_path / "out") as t:
            (t / "sub").mkdir()
            (t / "sub" / "f").write_text("x")
        assert stat.S_IMODE(os.stat(tmp_path / "out").st_mode) == 0o755
        assert stat.S_IMODE(os.stat(tmp_path / "out" / "sub" / "f").st_mode) == 0o644
        assert safety.is_tfvr_output(tmp_path / "out")
        with safety.atomic_file(tmp_path / "a.txt") as t:
            t.write_text("new")
        assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o644
    finally:
        os.umask(old)
    with pytest.raises(RuntimeError):
        with safety.atomic_file(tmp_path / "a.txt") as t:
            t.write_text("half")
            raise RuntimeError("boom")
    assert (tmp_path / "a.txt").read_text() == "new"
    with pytest.raises(OutputError, match="refused"):
        def verify(p):
            raise OutputError(f"{p}: refused")
        with safety.atomic_file(tmp_path / "a.txt", verify=verify) as t:
            t.write_text("bad")
    assert (tmp_path / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "out"]


def test_os_errors_become_one_line(tmp_path):
    import errno

    e = safety.os_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "x")
    assert "no space left" in str(e) and str(tmp_path / "x") in str(e)


def test_owned_folders_and_empty_folders(tmp_path):
    legacy = tmp_path / "export"
    legacy.mkdir()
    (legacy / "saved_model.pb").write_bytes(b"")
    with pytest.raises(OutputError, match="did not write"):
        safety.check_output(legacy, overwrite=True)
    safety.check_output(legacy, overwrite=True, owned=lambda p: (p / "saved_model.pb").exists())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OutputError, match="already exists"):
        safety.check_output(empty)
    safety.check_output(empty, allow_empty_dir=True)


def test_error_line_names_the_path_and_keeps_bugs(tmp_path):
    import errno

    assert safety.error_line(OSError(errno.EROFS, "Read-only file system", "/x/y")) == \
        "/x/y: read-only file system"
    assert safety.error_line(OSError(errno.EIO, "Input/output error")) == "Input/output error"
    assert safety.error_line(ValueError("a bug")) is None


def test_read_json_one_line_per_failure(tmp_path):
    from tfvr.errors import ConfigError, UserError

    path = tmp_path / "m.json"
    with pytest.raises(UserError, match=rf"^{re.escape(str(path))}: no such file$"):
        safety.read_json(path, "unreadable manifest")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: config file not found$"):
        safety.read_json(path, "not valid JSON", error=ConfigError, not_found="config file not found")
    path.write_text('{\n  "a": 1,\n  "b": oops\n}\n')
    with pytest.raises(UserError, match=rf"^{re.escape(str(path))}: unreadable manifest \(Expecting value at line 3\)$"):
        safety.read_json(path, "unreadable manifest")
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(UserError, match=rf"^{re.escape(str(path))}: unreadable manifest \(not UTF-8 text\)$"):
        safety.read_json(path, "unreadable manifest")
    with pytest.raises(UserError, match=rf"^{re.escape(str(tmp_path))}: cannot be read \(is a directory\)$"):
        safety.read_json(tmp_path, "unreadable manifest")
    path.write_text("[1, 2]")
    assert safety.read_json(path, "unreadable") == [1, 2]  # any JSON value unless an object is required
    with pytest.raises(UserError, match=rf"^{re.escape(str(path))}: not a manifest$"):
        safety.read_json(path, "unreadable", not_object="not a manifest")
    path.write_text('{"a": [1]}')
    assert safety.read_json(path, "unreadable", not_object="not a manifest") == {"a": [1]}
