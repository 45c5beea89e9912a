"""Locks between processes that share an output folder (two batches on one ``--out``, a cron job and a run by
hand, Ray drivers on different nodes of one shared folder).

A lock is a small JSON file created with ``O_CREAT | O_EXCL`` (atomic, also on NFS): who holds it (pid, host,
pid namespace), a random token, and a heartbeat, the file's modification time, refreshed by a thread while it is
held. It is removed when released, on every way out of the ``with`` block (an exception, Ctrl-C, SIGTERM).
A process killed with SIGKILL leaves it behind: it is *stale* when its pid no longer runs on this machine, or
(any machine) when its heartbeat is older than ``stale_after_s``, and the next process takes it over with a
one-line warning. The take-over is made under ``flock`` on the stale file itself (and a check that the path still
names that file), so two processes that both find it stale do not both take it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

HEARTBEAT_S = 30.0  # how often a held lock's modification time is refreshed
STALE_AFTER_S = 600.0  # a lock whose heartbeat is older than this is stale, whoever holds it
POLL_S = 0.02  # how often a waiting ``acquire`` looks again


def _pid_namespace() -> str:
    """This process's pid namespace (containers on one host share the hostname, not their pids)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: what the lock file says."""

    pid: int
    host: str
    namespace: str = ""
    token: str = ""
    since: float = 0.0  # time.time() when it was taken

    @classmethod
    def me(cls) -> Holder:
        return cls(os.getpid(), socket.gethostname(), _pid_namespace(), secrets.token_hex(8), time.time())

    @property
    def here(self) -> bool:
        """Whether the holder's pid is one of this machine's (same host, same pid namespace)."""
        return self.host == socket.gethostname() and self.namespace == _pid_namespace()

    def __str__(self) -> str:
        return f"pid {self.pid}" if self.here else f"pid {self.pid} on {self.host}"


class Locked(Exception):
    """The lock is held by a live process."""

    def __init__(self, path: Path, holder: Holder | None) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"{path.name}: held by {holder or 'another process'}")


def pid_running(pid: int) -> bool:
    """Whether ``pid`` is a live process of this machine (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stale_reason(holder: Holder | None, heartbeat: float, now: float, stale_after_s: float) -> str | None:
    """Why a lock is stale ("pid 123 is not running", "no heartbeat for 12 min"), or None: it is held."""
    if holder is not None and holder.here and not pid_running(holder.pid):
        return f"{holder} is not running"
    if now - heartbeat > stale_after_s:
        who = f"{holder}: " if holder is not None else ""
        return f"{who}no heartbeat for {(now - heartbeat) / 60:.0f} min"
    return None


def _parse(text: str) -> Holder | None:
    """The holder a lock file names; None when it cannot be read (being written, or not ours)."""
    try:
        data = json.loads(text)
        return Holder(
            int(data["pid"]),
            str(data["host"]),
            str(data.get("namespace", "")),
            str(data.get("token", "")),
            float(data.get("since", 0.0)),
        )
    except (ValueError, KeyError, TypeError):
        return None


def read_holder(path: Path) -> Holder | None:
    try:
        return _parse(path.read_text(encoding="utf-8"))
    except OSError:
        return None


@dataclass
class Lock:
    """A held lock; ``release()`` (or leaving the ``with`` block) removes its file and stops its heartbeat."""

    path: Path
    holder: Holder
    heartbeat_s: float | None = HEARTBEAT_S
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _beat: threading.Thread | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.heartbeat_s:
            self._beat = threading.Thread(target=self._beating, name=f"heartbeat {self.path.name}", daemon=True)
            self._beat.start()

    def _beating(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            if not self.held():
                log.warning("%s: the lock was taken over by %s", self.path.name, read_holder(self.path))
                return
            try:
                os.utime(self.path)
            except OSError:
                return

    def held(self) -> bool:
        """Whether the lock file is still this lock's (not released, not taken over)."""
        current = read_holder(self.path)
        return current is not None and current.token == self.holder.token

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join()
        if self.held():
            try:
                self.path.unlink()
            except OSError:
                pass

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _create(path: Path, holder: Holder) -> bool:
    """Make the lock file, with its holder in it; False when it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, json.dumps(asdict(holder)).encode())
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return True


def _take_over_if_stale(path: Path, stale_after_s: float) -> bool:
    """Remove ``path`` if it is a stale lock; True when the caller should try to create it again (removed now, or
    gone already), False when it is held."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process is taking it over right now
            return False
        opened = os.fstat(fd)
        try:
            now_there = os.stat(path)
        except FileNotFoundError:
            return True
        if (opened.st_ino, opened.st_dev) != (now_there.st_ino, now_there.st_dev):
            return True  # replaced since we opened it: look again
        holder = _parse(os.read(fd, 65536).decode("utf-8", "replace"))
        why = stale_reason(holder, opened.st_mtime, time.time(), stale_after_s)
        if why is None:
            return False
        log.warning("%s: taking over a stale lock (%s)", path.name, why)
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def acquire(
    path: Path,
    *,
    wait_s: float = 0.0,
    stale_after_s: float = STALE_AFTER_S,
    heartbeat_s: float | None = HEARTBEAT_S,
) -> Lock:
    """Take the lock ``path`` (waiting up to ``wait_s`` while a live process holds it; a stale one is taken
    over). Raises ``Locked`` naming the holder."""
    deadline = time.monotonic() + wait_s
    while True:
        holder = Holder.me()
        if _create(path, holder):
            return Lock(path, holder, heartbeat_s)
        if _take_over_if_stale(path, stale_after_s):
            continue
        if time.monotonic() >= deadline:
            raise Locked(path, read_holder(path))
        time.sleep(POLL_S)
