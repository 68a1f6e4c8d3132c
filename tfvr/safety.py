"""Output safety: the one place where tfvr decides whether it may write, replace or delete a path.

Every command that writes (restore, inpaint, synthesize, make-synthetic, prepare, export, convert-weights, the
trainer) goes through this module, so the rules below hold everywhere:

* ``check_output(out, inputs=..., overwrite=...)`` refuses an output that **is, contains or lies inside** any
  input (paths resolved, symlinks followed) or a training workdir, and an existing output unless ``overwrite``.
  With ``overwrite`` an existing *folder* is replaced only when tfvr made it (it holds the marker file
  ``.tfvr-output``); a single existing *file* may be replaced. A folder tfvr did not make is never deleted.
* ``atomic_dir(out)`` / ``atomic_file(out)`` are context managers that hand out a temporary sibling
  (``.<name>.tmp-XXXX`` next to ``out``), and on a clean exit mark it (folders), give it the user's umask
  (0644 files / 0755 folders by default; ``mkdtemp``'s 0700 never survives), ``fsync`` it and rename it onto
  ``out``. An existing ``out`` is first moved aside and deleted only after the new one is in place. On any
  exception the temporary is removed and ``out`` is untouched.
* ``os_error(e, path)`` turns an ``OSError`` (disk full, permission denied, symlink loop, ...) into a one-line
  ``OutputError`` naming the path; ``guard_os_errors(path)`` is the context-manager form.
* ``is_workdir(path)`` recognises a training run folder (TF checkpoints in ``checkpoints/``, or a
  ``config.json`` beside ``tb/`` / ``metrics.jsonl`` / ``.lock``).

Nothing here deletes a path that tfvr did not create in this call or mark as its own earlier.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Union

from tfvr.errors import UserError

PathLike = Union[str, os.PathLike]
MARKER = ".tfvr-output"


class OutputError(UserError):
    """An output that may not be written (it would replace an input or a foreign folder) or could not be."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def resolved(path: PathLike) -> Path:
    """The absolute path with every symlink followed (the path need not exist)."""
    try:
        return Path(path).expanduser().resolve(strict=False)
    except (OSError, RuntimeError) as e:  # RuntimeError: symlink loop on older Pythons
        raise OutputError(f"{path}: cannot resolve the path ({e})") from None


def _related(a: Path, b: Path) -> Optional[str]:
    """How `a` relates to `b`: "is", "contains", "inside" or None."""
    if a == b:
        return "is"
    if a in b.parents:
        return "contains"
    if b in a.parents:
        return "inside"
    return None


def is_workdir(path: PathLike) -> bool:
    """True for a tfvr training run folder: `checkpoints/` holding TensorFlow checkpoints (the ``checkpoint`` state
    file or ``ckpt-*.index``), or a ``config.json`` next to ``tb/``, ``metrics.jsonl`` or the run's ``.lock``.
    (A plain folder named checkpoints - e.g. of PyTorch .pth files - does not make its parent a run.)"""
    p = Path(path)
    try:
        if not p.is_dir():
            return False
        ck = p / "checkpoints"
        if ck.is_dir() and ((ck / "checkpoint").is_file() or any(ck.glob("ckpt-*.index"))):
            return True
        return (p / "config.json").is_file() and ((p / "tb").is_dir() or (p / "metrics.jsonl").is_file()
                                                  or (p / ".lock").is_file())
    except OSError:
        return False


def is_tfvr_output(path: PathLike) -> bool:
    """True for a folder tfvr wrote (it carries the ``.tfvr-output`` marker)."""
    return (Path(path) / MARKER).is_file()


def _enclosing_workdir(p: Path) -> Optional[Path]:
    for q in [p, *p.parents]:
        if is_workdir(q):
            return q
    return None


def check_output(out: PathLike, inputs: Iterable[PathLike] = (), *, overwrite: bool = False,
                 allow_inside_workdir: bool = False, what: str = "output",
                 owned: Optional[Callable[[Path], bool]] = None, allow_empty_dir: bool = False) -> Path:
    """Checks that `out` may be written; returns its resolved path. Raises OutputError (one line) otherwise.

    Refused: `out` is, contains or lies inside any of `inputs`; `out` is or contains a training workdir (or lies
    inside one, unless `allow_inside_workdir`, for files a run writes into its own folder); `out` exists and not
    `overwrite`; `out` is an existing folder tfvr did not make (no marker, and `owned(folder)` - the caller's
    test for its own output written before the marker existed, e.g. a folder holding only a SavedModel - is not
    true), even with `overwrite`. `allow_empty_dir`: an existing empty folder counts as absent.
    """
    given = Path(out)
    r = resolved(out)
    for inp in inputs:
        if inp is None:
            continue
        ri = resolved(inp)
        rel = _related(r, ri)
        if rel == "is":
            raise OutputError(f"{given}: the {what} would overwrite the input {inp}")
        if rel == "contains":
            raise OutputError(f"{given}: the {what} contains the input {inp}; choose another {what} path")
        if rel == "inside" and ri.is_file():  # a file cannot hold anything; only real folders matter
            continue
        if rel == "inside":
            raise OutputError(f"{given}: the {what} lies inside the input folder {inp}; choose another {what} path")
    wd = _enclosing_workdir(r)
    if wd is not None and (wd == r or not allow_inside_workdir):
        raise OutputError(f"{given}: the {what} would be written into the training run {wd}; "
                          f"choose a path outside it")
    if r.is_dir():
        for sub in _walk_dirs_shallow(r):
            if is_workdir(sub):
                raise OutputError(f"{given}: the {what} contains the training run {sub}; not replacing it")
    if allow_empty_dir and r.is_dir() and not os.path.islink(given) and not any(r.iterdir()):
        return r
    if os.path.lexists(given):
        if not overwrite:
            raise OutputError(f"{given} already exists (pass --overwrite to replace it)")
        if r.is_dir() and not is_tfvr_output(r) and not (owned is not None and owned(r)):
            raise OutputError(f"{given}: is a folder tfvr did not write (no {MARKER} marker); not replacing it - "
                              f"remove it yourself or choose another {what} path")
    return r


def _walk_dirs_shallow(root: Path, depth: int = 2) -> Iterator[Path]:
    """Sub-folders of `root` down to `depth` levels (symlinks not followed)."""
    frontier = [root]
    for _ in range(depth):
        nxt = []
        for d in frontier:
            try:
                for e in os.scandir(d):
                    if e.is_dir(follow_symlinks=False):
                        nxt.append(Path(e.path))
            except OSError:
                continue
        yield from nxt
        frontier = nxt


def apply_umask(path: PathLike) -> None:
    """Gives `path` (a file, or a folder and everything below it) the modes a plain ``open``/``mkdir`` would:
    0666 & ~umask for files, 0777 & ~umask for folders (executable bits of files are kept as they are)."""
    mask = _umask()
    fmode, dmode = 0o666 & ~mask, 0o777 & ~mask
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        os.chmod(p, dmode)
        for root, dirs, files in os.walk(p):
            for d in dirs:
                q = os.path.join(root, d)
                if not os.path.islink(q):
                    os.chmod(q, dmode)
            for f in files:
                q = os.path.join(root, f)
                if not os.path.islink(q):
                    x = os.stat(q).st_mode & 0o111
                    os.chmod(q, fmode | (x & ~mask))
    elif p.exists() and not p.is_symlink():
        x = os.stat(p).st_mode & 0o111
        os.chmod(p, fmode | (x & ~mask))


def _fsync_tree(path: Path) -> None:
    if path.is_dir():
        for root, _, files in os.walk(path):
            for f in files:
                _fsync_file(Path(root) / f)
    else:
        _fsync_file(path)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Renames `tmp` onto `out`; an existing `out` is moved aside first, deleted only once `tmp` is in place."""
    old = None
    if os.path.lexists(out):
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def os_error(e: BaseException, path: PathLike) -> OutputError:
    """A one-line OutputError for an OSError met while writing `path` (disk full named as such)."""
    if isinstance(e, OSError):
        reason = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                  errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                  errno.ELOOP: "too many levels of symbolic links", errno.EROFS: "read-only file system"
                  }.get(e.errno, e.strerror or str(e))
        where = e.filename or path
        return OutputError(f"{where}: {reason}" if str(where) else reason)
    return OutputError(f"{path}: {e}")


_DISK_CAUSES = ("no space left on device", "disk quota exceeded", "permission denied", "read-only file system",
                "too many levels of symbolic links", "operation not permitted", "input/output error")


def error_line(e: BaseException) -> Optional[str]:
    """The one line the CLIs and train scripts print for an environment error that is not a tfvr bug, or None
    (let it propagate with its traceback): an OSError (disk full, permission denied, symlink loop ... named with
    its path), TensorFlow's ResourceExhaustedError (disk full or out of memory) and any other tf.errors.OpError
    whose cause is the disk or a permission. TensorFlow is not imported here (only looked up if loaded)."""
    if isinstance(e, UserError):
        return " ".join(str(e).split())
    if isinstance(e, OSError):
        return " ".join(str(os_error(e, e.filename or "")).split())
    tf_errors = getattr(sys.modules.get("tensorflow"), "errors", None)
    if tf_errors is not None and isinstance(e, tf_errors.OpError):
        msg = " ".join((e.message or str(e)).split())
        low = msg.lower()
        cause = next((c for c in _DISK_CAUSES if c in low), None)
        if cause is not None:
            what = cause
        elif isinstance(e, tf_errors.ResourceExhaustedError):
            what = "out of memory" if ("oom" in low or "memory" in low) else "resource exhausted (disk full?)"
        else:
            return None
        return f"{what}: {msg[:400]}"
    return None


@contextlib.contextmanager
def guard_os_errors(path: PathLike) -> Iterator[None]:
    """Re-raises any OSError inside the block as a one-line OutputError naming `path`."""
    try:
        yield
    except OutputError:
        raise
    except OSError as e:
        raise os_error(e, path) from None


def _tmp_sibling(out: Path, directory: bool) -> Path:
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if directory:
            return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
        # the same suffixes as `out` (".weights.h5", ".mp4"): writers pick the format by the extension
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", suffix="".join(out.suffixes[-2:]), dir=parent)
        os.close(fd)
        return Path(name)
    except OSError as e:
        raise os_error(e, out) from None


def _remove_tmp(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def _atomic(out: Path, directory: bool, finish) -> Iterator[Path]:
    """The shared body of atomic_dir / atomic_file: a temporary sibling, `finish(tmp)` on success (mark, verify,
    umask, fsync), then the swap onto `out`; on any error the temporary goes and `out` is untouched."""
    tmp = _tmp_sibling(out, directory=directory)
    try:
        yield tmp
        with guard_os_errors(out):
            finish(tmp)
            _swap_into_place(tmp, out)
    except OSError as e:
        _remove_tmp(tmp)
        raise os_error(e, out) from None
    except BaseException:
        _remove_tmp(tmp)
        raise


def _seal(tmp: Path, verify, fsync) -> None:
    """The end of an atomic write before the rename: ``verify(tmp)`` (raises to refuse it), umask, fsync."""
    if verify is not None:
        verify(tmp)
    apply_umask(tmp)
    fsync(tmp)


@contextlib.contextmanager
def atomic_dir(out: PathLike, *, mark: bool = True, verify=None) -> Iterator[Path]:
    """Yields a temporary sibling folder of `out`; on success marks it as tfvr's (``.tfvr-output``), runs
    ``verify(tmp)`` (which raises to refuse the result), applies the umask, fsyncs and renames it onto `out`.
    Call ``check_output`` first: this replaces an existing `out` without asking."""
    out = Path(out)

    def finish(tmp: Path) -> None:
        if mark:
            (tmp / MARKER).write_text("written by tfvr; `--overwrite` may replace this folder\n")
        _seal(tmp, verify, _fsync_tree)

    with _atomic(out, True, finish) as tmp:
        yield tmp


@contextlib.contextmanager
def atomic_file(out: PathLike, *, verify=None) -> Iterator[Path]:
    """Yields a temporary sibling file path of `out` (same suffix, so writers that pick a format by the
    extension work); on success runs ``verify(tmp)``, applies the umask, fsyncs and renames it onto `out`."""
    out = Path(out)

    def finish(tmp: Path) -> None:
        if not tmp.exists():
            raise OutputError(f"{out}: nothing was written")
        _seal(tmp, verify, _fsync_file)

    with _atomic(out, False, finish) as tmp:
        yield tmp


def write_text(out: PathLike, text: str) -> Path:
    """Writes a small text file atomically (checked, umask applied)."""
    with atomic_file(out) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
    return Path(out)


def read_json(path: PathLike, problem: str, *, error: type[UserError] = UserError, not_found: str = "no such file",
              not_object: Optional[str] = None):
    """The JSON value in the file `path`, or one line `error("<path>: ...")` (a `UserError` subclass) saying why not.
    The one reader of the JSON files tfvr is given (config.json, manifests, sidecars, export metadata):

    - no such file: "<path>: <not_found>"; another OS error: "<path>: cannot be read (<reason>)";
    - not JSON: "<path>: <problem> (<parser message> at line <n>)", or "<path>: <problem> (not UTF-8 text)";
    - with `not_object`, a top-level value that is not a JSON object: "<path>: <not_object>".
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {not_found}") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({(e.strerror or str(e)).lower()})") from None
    except json.JSONDecodeError as e:
        raise error(f"{path}: {problem} ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: {problem} (not UTF-8 text)") from None
    if not_object is not None and not isinstance(data, dict):
        raise error(f"{path}: {not_object}")
    return data
