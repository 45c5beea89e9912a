"""The batch over a Ray cluster: one actor per worker holds the models, annotates one whole video per call.

The driver hands out videos as workers free up (a ``ray.wait`` loop over the calls in flight, so results are
taken in the order they finish, not the order they were sent) and writes ``batch.csv`` in input order with the
rows of the single-process batch (``batch.video_row`` builds them, on the worker). Workers write straight into
the output folder, which must be the same folder on every node: a marker file written by the driver and read
by each worker (and one the other way round) checks that before any work.

A worker process that dies (``kill -9``, out of memory, its node lost) costs a retry of its video on another
worker, up to ``max_attempts`` in all; the dead worker is replaced by a new one. A retry continues from the
video's last checkpoint (``--checkpoint-s``) in the shared output folder, as a run with ``--skip-existing``
does. A video that fails for its own reasons comes back as a ``failed`` row and is never retried.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_video import __version__
from fer_video.batch import SKIPPED, BatchRow, BatchTable, claim, output_names
from fer_video.checkpoint import Checkpoints
from fer_video.errors import Cancelled, FerVideoError
from fer_video.locks import Lock
from fer_video.outputs import OutputSet, output_paths, prepare_output_folder
from fer_video.types import Progress, Settings

log = logging.getLogger(__name__)

RAY_MISSING = 'Ray is not installed: pip install "fer-video[ray]"'
MARKER_PREFIX = ".fer-video-shared-"
WorkerHook = Callable[[str, Progress], None]  # (output name, progress) on the worker, for tests


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray batch runs. ``address`` None: a local Ray on this machine (all its cores),
    shut down at the end; ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:10001"``: a running cluster, left
    running. ``workers`` None: one per GPU, else one per 2 cores (``device.plan_workers``)."""

    workers: int | None = None
    address: str | None = None
    max_attempts: int = 3  # per video, counting only attempts cut short by a worker's death
    worker_logs: bool = False  # show the workers' own log lines here (prefixed by Ray with the worker's pid)


@dataclass(frozen=True)
class WorkerReport:
    """What a worker says when it starts: where it runs, whether it sees the driver's output folder."""

    node: str
    host: str
    version: str
    threads: int
    sees_marker: bool
    wrote_marker: str  # the file it wrote into the output folder ("" when it could not)
    error: str = ""  # the one-line reason it cannot work (models not loadable, folder not writable...)
    pid: int = 0


def import_ray():
    try:
        import ray
    except ModuleNotFoundError:
        raise FerVideoError(RAY_MISSING) from None
    return ray


def discard_partial(out_dir: Path, name: str) -> None:
    """Remove the temporary files a worker that died or was killed left for ``name`` (never a finished output)."""
    leftovers = OutputSet(out_dir, name)
    leftovers.scratch("video.mp4")  # the pipeline's video before its audio is muxed in
    leftovers.discard()
    Checkpoints(out_dir, name).remove_unsaved()  # a saved checkpoint stays: a later run continues from it


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]


class VideoWorker:
    """One Ray actor: the models loaded once, torch pinned to the CPUs Ray gave it, one video per call."""

    def __init__(self, settings: Settings, threads: int, hook: WorkerHook | None = None) -> None:
        self.settings = settings
        self.threads = threads
        self.hook = hook
        self.models: Any = None

    def ready(self, out_dir: str, marker: str, token: str) -> WorkerReport:
        import ray

        from fer_video.device import apply_threads
        from fer_video.stages import load_models

        node = ray.get_runtime_context().get_node_id()
        host = f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"
        try:
            sees = (Path(out_dir) / marker).read_text() == token
        except OSError:
            sees = False
        wrote = Path(out_dir) / f"{marker}-{node}"
        try:
            wrote.write_text(token)
        except OSError:
            wrote = Path()
        error = ""
        try:
            models = load_models(self.settings)
            models.compute = dataclasses.replace(models.compute, threads=self.threads)
            apply_threads(models.compute)
            self.models = models
        except Exception as exc:
            error = _first_line(exc)
        return WorkerReport(node, host, __version__, self.threads, sees, wrote.name, error, os.getpid())

    def annotate(self, path: str, shown: str, out_dir: str, name: str, resume: bool = False) -> BatchRow:
        from fer_video.batch import video_row

        hook = self.hook
        progress = (lambda p: hook(name, p)) if hook is not None else None
        return video_row(
            Path(path),
            Path(out_dir),
            self.settings,
            models=self.models,
            name=name,
            progress=progress,
            shown=shown,
            resume=resume,
        )


@contextmanager
def ray_session(address: str | None, quiet_logs: bool = True) -> Iterator[Any]:
    """Ray for the length of a batch. No address: a local Ray on this machine (no dashboard), shut down at the
    end whatever happens; an address: connect to that cluster and only disconnect at the end. A Ray this
    process already started (a notebook, the tests) is used as it is and left alone."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    from fer_video.device import cpu_cores

    common: dict[str, Any] = {"log_to_driver": not quiet_logs, "logging_level": logging.ERROR}
    main_thread = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
    try:
        if address is None:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
            # "local": a new Ray of its own, even when RAY_ADDRESS or a `ray start` on this machine says otherwise
            ray.init(address="local", num_cpus=cpu_cores(), include_dashboard=False, **common)
        else:
            ray.init(address=address, **common)
        if sigterm is not None:  # Ray's core replaces it with a crash handler (stack dump, abort): put it back
            signal.signal(signal.SIGTERM, sigterm)
    except (ConnectionError, RuntimeError, ValueError, ModuleNotFoundError) as exc:
        with suppress(Exception):
            ray.shutdown()
        where = "start a local Ray" if address is None else f"connect to the Ray cluster at {address}"
        hint = ' (Ray Client needs pip install "ray[client]")' if isinstance(exc, ModuleNotFoundError) else ""
        raise FerVideoError(f"cannot {where}: {_first_line(exc)}{hint}") from None
    try:
        yield ray
    finally:
        ray.shutdown()  # a local Ray: its processes end; a cluster: this driver disconnects, the cluster stays


def _death_errors(ray) -> tuple[type[BaseException], ...]:
    e = ray.exceptions
    return tuple(
        getattr(e, n)
        for n in ("RayActorError", "WorkerCrashedError", "OutOfMemoryError", "NodeDiedError")
        if hasattr(e, n)
    )


class _Workers:
    """The actors of one batch: started, checked, replaced when one dies, killed at the end."""

    def __init__(self, ray, settings: Settings, options: RayOptions, out_dir: Path, hook: WorkerHook | None):
        from fer_video.device import plan_workers

        self.ray, self.out_dir, self.hook = ray, out_dir, hook
        self.settings = settings
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        cpu_only = (settings.device or "auto").strip().lower() == "cpu"
        gpus = [0 if cpu_only else int(r.get("GPU", 0)) for r in nodes]
        self.plan = plan_workers([int(r.get("CPU", 0)) for r in nodes], gpus, options.workers)
        if self.plan.note:
            log.warning("%s", self.plan.note)
        self.token = secrets.token_hex(8)
        self.marker = f"{MARKER_PREFIX}{self.token}"
        (out_dir / self.marker).write_text(self.token)
        self.remote_class = ray.remote(VideoWorker).options(
            num_cpus=self.plan.cpus, num_gpus=self.plan.gpus, max_restarts=0, max_task_retries=0
        )
        self.actors: list[Any] = []
        self.here = _driver_node(ray)
        self.local_pids: dict[int, int] = {}  # id(actor) -> pid, workers on this machine: stop() waits for them

    def start(self) -> tuple[Any, Any]:
        """A new actor and the reference of its ``ready`` call."""
        actor = self.remote_class.remote(self.settings, self.plan.cpus, self.hook)
        self.actors.append(actor)
        return actor, actor.ready.remote(str(self.out_dir), self.marker, self.token)

    def check(self, actor: Any, ref: Any, deaths: tuple[type[BaseException], ...]) -> None:
        """Refuse a worker that cannot work here: another fer-video, models not loadable, another folder."""
        try:
            report: WorkerReport = self.ray.get(ref)
        except deaths as exc:
            raise FerVideoError(f"a Ray worker died while starting ({exc.__class__.__name__})") from None
        where = f"the Ray worker on {report.host}"
        if report.error:
            raise FerVideoError(f"{where} could not start: {report.error}")
        if report.version != __version__:
            raise FerVideoError(
                f"{where} runs fer-video {report.version}, this machine {__version__}: "
                "install the same version on every node"
            )
        wrote = self.out_dir / report.wrote_marker if report.wrote_marker else None
        if not report.sees_marker or wrote is None or not wrote.is_file():
            seen = "cannot write there" if not report.wrote_marker else "writes to a different folder of that name"
            raise FerVideoError(
                f"{self.out_dir}: the output folder is not shared with {where}, which {seen}: "
                "use a folder every node mounts at the same path (NFS, a cluster file system)"
            )
        if report.node == self.here and report.pid:
            self.local_pids[id(actor)] = report.pid

    def drop(self, actor: Any) -> None:
        with suppress(Exception):
            self.ray.kill(actor, no_restart=True)
        self.actors.remove(actor)
        self.local_pids.pop(id(actor), None)

    def stop(self) -> None:
        """Kill every actor, wait until the processes of those on this node are gone (so none writes any more;
        a few seconds at most, then SIGKILL), remove the marker files."""
        for actor in self.actors:
            with suppress(Exception):
                self.ray.kill(actor, no_restart=True)
        deadline = time.monotonic() + 5
        for pid in self.local_pids.values():
            while _worker_running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _worker_running(pid):
                with suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        for marker in self.out_dir.glob(f"{self.marker}*"):
            with suppress(OSError):
                marker.unlink()


def _driver_node(ray) -> str:
    """The Ray node this process runs on; "" through Ray Client (the driver is then on no node of the cluster)."""
    if ray.util.client.ray.is_connected():
        return ""
    return ray.get_runtime_context().get_node_id()


def _worker_running(pid: int) -> bool:
    """Whether ``pid`` is still a running Ray worker process (not gone, not a zombie waiting for its raylet, not
    a process that took the number since). Without ``/proc``: False, nothing is waited for."""
    try:
        proc = Path(f"/proc/{pid}")
        running = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        return running and (proc / "cmdline").read_bytes().startswith(b"ray::")
    except (OSError, IndexError):
        return False


def run_batch_ray(
    inputs: list[Path],
    out_dir: Path,
    settings: Settings,
    options: RayOptions | None = None,
    *,
    skip_existing: bool = False,
    batch_csv: bool = True,
    on_done: Callable[[BatchRow], None] | None = None,
    cancel=None,
    worker_hook: WorkerHook | None = None,
) -> list[BatchRow]:
    """``batch.run_batch`` over Ray: the same rows in the same order, ``batch.csv`` rewritten after each video
    (the rows finished so far, in input order). The driver holds each video's lock while a worker annotates it
    (``batch.claim``: an input another run is annotating is skipped as ``locked``). ``on_done`` is called as
    videos finish (any order). Ctrl-C or ``cancel`` kills the workers and removes the unfinished outputs."""
    import_ray()  # before any work: the one-line error when Ray is not installed
    options = options or RayOptions()
    out_dir = Path(out_dir).absolute()
    prepare_output_folder(out_dir)
    if settings.weights:  # workers do not start in this folder
        settings = dataclasses.replace(settings, weights=str(Path(settings.weights).absolute()))
    settings.check()
    names = output_names(inputs)
    rows: list[BatchRow | None] = [None] * len(inputs)
    todo: deque[int] = deque()
    for i, (path, name) in enumerate(zip(inputs, names, strict=True)):
        if skip_existing and output_paths(out_dir, name)["summary"].exists():
            rows[i] = BatchRow(str(path), "skipped", SKIPPED)
        else:
            todo.append(i)
    table = BatchTable(out_dir / "batch.csv", inputs) if batch_csv else None
    locks: dict[int, Lock] = {}  # the videos this driver has handed out (held until their row is final)

    def finish(i: int, row: BatchRow) -> None:
        rows[i] = row
        if i in locks:
            locks.pop(i).release()
        if table is not None:
            table.write([r for r in rows if r is not None])
        if on_done:
            on_done(row)

    def take(i: int) -> bool:
        """Video ``i``'s lock (True), or its skipped/locked row written (False)."""
        if i in locks:  # handed out again after its worker died
            return True
        got = claim(out_dir, names[i], str(inputs[i]), skip_existing)
        if isinstance(got, Lock):
            locks[i] = got
            return True
        finish(i, got)
        return False

    for i, row in enumerate(rows):
        if row is not None:
            finish(i, row)
    in_flight: dict[Any, tuple[Any, int]] = {}
    try:
        if todo:
            with ray_session(options.address, quiet_logs=not options.worker_logs) as ray:
                _run(
                    ray,
                    inputs,
                    names,
                    todo,
                    out_dir,
                    settings,
                    options,
                    worker_hook,
                    in_flight,
                    finish,
                    take,
                    cancel,
                    resume=skip_existing,
                )
    finally:
        for _, i in in_flight.values():  # after the workers are gone: nothing writes any more
            discard_partial(out_dir, names[i])
        for lock in locks.values():
            lock.release()
    return [r for r in rows if r is not None]


def _run(
    ray,
    inputs: list[Path],
    names: list[str],
    todo: deque[int],
    out_dir: Path,
    settings: Settings,
    options: RayOptions,
    hook: WorkerHook | None,
    in_flight: dict[Any, tuple[Any, int]],
    finish: Callable[[int, BatchRow], None],
    take: Callable[[int], bool],
    cancel,
    resume: bool = False,
) -> None:
    """The ``ray.wait`` loop: a video to each free worker (once ``take`` has its lock), results as they come,
    dead workers replaced; a video whose worker died continues from its last checkpoint (``resume``: every
    video does)."""
    deaths = _death_errors(ray)
    workers = _Workers(ray, settings, options, out_dir, hook)
    attempts: dict[int, int] = {}
    try:
        first = [workers.start() for _ in range(min(workers.plan.workers, len(todo)))]
        for actor, ref in first:  # every first worker checked before any work is handed out
            workers.check(actor, ref, deaths)
        free: list[Any] = [actor for actor, _ in first]
        starting: dict[Any, Any] = {}  # ready() of a replacement -> its actor
        while todo or in_flight:
            while free and todo:
                i = todo.popleft()
                if not take(i):
                    continue
                actor = free.pop()
                again = resume or i in attempts
                ref = actor.annotate.remote(str(inputs[i].absolute()), str(inputs[i]), str(out_dir), names[i], again)
                in_flight[ref] = (actor, i)
            if not in_flight and not starting:  # the videos left were all being annotated by another run
                continue
            done, _ = ray.wait([*in_flight, *starting], num_returns=1, timeout=1.0)
            if cancel is not None and cancel.is_set():
                raise Cancelled("batch cancelled")
            for ref in done:
                if ref in starting:
                    actor = starting.pop(ref)
                    workers.check(actor, ref, deaths)
                    free.append(actor)
                    continue
                actor, i = in_flight.pop(ref)
                try:
                    row = ray.get(ref)
                except deaths as exc:
                    _after_death(i, exc, attempts, options, inputs, names, out_dir, todo, finish)
                    workers.drop(actor)
                    if len(todo) > len(free) + len(starting):  # a new worker only for work left to do
                        new, new_ref = workers.start()
                        starting[new_ref] = new
                    continue
                finish(i, row)
                free.append(actor)
    finally:
        workers.stop()


def _after_death(
    i: int,
    exc: BaseException,
    attempts: dict[int, int],
    options: RayOptions,
    inputs: list[Path],
    names: list[str],
    out_dir: Path,
    todo: deque[int],
    finish: Callable[[int, BatchRow], None],
) -> None:
    """Video ``i`` lost its worker: again first in the queue, or ``failed`` after ``max_attempts`` deaths."""
    attempts[i] = attempts.get(i, 0) + 1
    name, cause = inputs[i].name, exc.__class__.__name__
    if attempts[i] < options.max_attempts:
        log.warning(
            "%s: its Ray worker died (%s); annotating it again (attempt %d of %d)",
            name,
            cause,
            attempts[i] + 1,
            options.max_attempts,
        )
        todo.appendleft(i)
        return
    discard_partial(out_dir, names[i])
    finish(i, BatchRow(str(inputs[i]), "failed", f"{name}: its Ray worker died {attempts[i]} times ({cause})"))
