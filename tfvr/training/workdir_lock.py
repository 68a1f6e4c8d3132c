"""One training process per workdir: an OS file lock on `<workdir>/.lock`, held for the life of the run.

`WorkdirLock(workdir).acquire()` takes `fcntl.flock(LOCK_EX | LOCK_NB)` on `<workdir>/.lock` and writes the
holder into the file (JSON: pid, host, started (ISO time), argv). A second trainer on the same workdir finds the
lock held and stops with one line naming the holder (`WorkdirLocked`, a `UserError`: exit code 2) before it
reads or writes anything else in the workdir. The kernel releases a flock when its process dies (SIGKILL, OOM
kill, power loss on a local disk), so a dead run never blocks the next one: a lock file that still names a
holder although the lock was free is a stale lock from a process that is gone; it is taken over with a warning
naming that process. `release()` empties the file and unlocks it (a clean exit leaves no stale holder).

Under MultiWorkerMirroredStrategy only the chief locks (the other workers write nothing into the workdir but a
scratch folder of their own). On network file systems flock is as reliable as the server's lock support.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import logging
import os
import socket
import sys
from typing import Optional

from tfvr.errors import UserError

log = logging.getLogger("tfvr.training")

LOCK_NAME = ".lock"

__all__ = ["WorkdirLock", "WorkdirLocked", "LOCK_NAME"]


class WorkdirLocked(UserError):
    """Another process is training in this workdir."""


def _describe(info: dict) -> str:
    if not info:
        return "an unknown process"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')} (started {info.get('started', '?')})"


class WorkdirLock:
    def __init__(self, workdir: str):
        self.workdir = os.path.abspath(workdir)
        self.path = os.path.join(self.workdir, LOCK_NAME)
        self._fd: Optional[int] = None
        self.previous: Optional[dict] = None  # the stale holder taken over, if any

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _read(self, fd: int) -> dict:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            raw = os.read(fd, 65536).decode("utf-8", "replace").strip()
        except OSError:
            return {}
        if not raw:
            return {}
        try:
            info = json.loads(raw)
            return info if isinstance(info, dict) else {"raw": raw[:200]}
        except ValueError:
            return {"raw": raw[:200]}

    def acquire(self) -> "WorkdirLock":
        if self._fd is not None:
            return self
        from tfvr.safety import os_error

        try:
            os.makedirs(self.workdir, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise os_error(e, self.path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = self._read(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise WorkdirLocked(f"{self.workdir} is in use by another training run: {_describe(holder)} holds "
                                    f"{self.path}; stop it first or choose another --workdir") from None
            raise os_error(e, self.path) from None
        previous = self._read(fd)
        if previous:
            self.previous = previous
            log.warning("%s: taking over the stale lock of %s, which is gone (it did not exit cleanly)",
                        self.path, _describe(previous))
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "argv": sys.argv[:8]}
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(info) + "\n").encode())
            os.fsync(fd)
        except OSError as e:
            os.close(fd)
            raise os_error(e, self.path) from None
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> "WorkdirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
