"""Load benchmark of the web app: throughput with 1 and 4 concurrent clients, and the server's memory over jobs.

    python benchmarks/load.py [--jobs 8] [--seconds 3] [--width 320 --height 180] [--save NAME]
    python benchmarks/load.py --tiny        # 2 jobs on a 1 s clip: checks the script runs, measures nothing

Starts ``fer-video ui`` (the shipped model, CPU, no example clip) as a subprocess on a free port, then, with
Gradio's client and the ``/annotate`` endpoint, on one synthetic clip (``fer_video.demo``, two faces):
  memory       one job, then nine more, one after the other: the server's RSS (``/proc/PID/status``) after the
               first and after the tenth job (flat: nothing kept per job)
  1 client     ``--jobs`` jobs, one after the other, from one client
  4 clients    the same number of jobs from 4 clients at once (``--jobs / 4`` each): the same total work
Throughput is jobs per minute of wall time from the first submit to the last result. The server runs one
annotation at a time, so more clients cannot make the annotating faster: the ratio shows what the queue costs
or saves (uploads, downloads and Gradio's own handling of a job overlapping the next annotation); the jobs' own
seconds (from their summaries), added up, show it: never more than the wall time. The load average is read
before and after: on a shared machine, compare only ratios measured in one run. The server is always stopped
(by its pid).
Output: a table on stdout, JSON in benchmarks/out/ (``--save NAME`` also writes benchmarks/results/NAME.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
RESULTS = HERE / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


class Server:
    """``fer-video ui`` in a subprocess on a free port; ``stop()`` ends it (and only it) by its pid."""

    def __init__(self, work_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        args = ["--port", str(self.port), "--no-example", "--device", "cpu", "--work-dir", str(work_dir)]
        self.log = open(work_dir / "server.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fer_video", "ui", *args], stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_up(self, timeout: float = 300) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}); see {self.log.name}")
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the server did not come up in {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@dataclass
class Run:
    seconds: float  # wall time, first submit to last result
    annotating: float  # the jobs' own seconds (their summaries), added up: at most ``seconds`` if one at a time


def run_jobs(url: str, clip: Path, clients: int, jobs: int, downloads: Path) -> Run:
    """``jobs`` jobs spread over ``clients`` clients submitting at once."""
    from gradio_client import Client, handle_file

    pool = [Client(url, verbose=False, download_files=str(downloads)) for _ in range(clients)]
    share = [jobs // clients + (i < jobs % clients) for i in range(clients)]
    errors: list[BaseException] = []
    annotating: list[float] = []
    start = threading.Barrier(clients + 1)

    def work(client, n: int) -> None:
        start.wait()
        try:
            for _ in range(n):
                _, _, summary = client.predict(handle_file(str(clip)), api_name="/annotate")
                annotating.append(json.loads(Path(summary).read_text())["processing"]["seconds"])
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c, n)) for c, n in zip(pool, share, strict=True)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    for c in pool:
        c.close()
    if errors:
        raise RuntimeError(f"{len(errors)} job(s) failed: {errors[0]!r}")
    return Run(seconds, sum(annotating))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=8, help="jobs per throughput run (default 8)")
    p.add_argument("--seconds", type=float, default=3.0, help="clip length (default 3)")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=180)
    p.add_argument("--memory-jobs", type=int, default=10, help="jobs in the memory run (default 10)")
    p.add_argument("--tiny", action="store_true", help="2 jobs on a 1 s clip: checks the script runs")
    p.add_argument("--save", metavar="NAME", help="also write benchmarks/results/NAME.json")
    args = p.parse_args(argv)
    if args.tiny:
        args.jobs, args.seconds, args.memory_jobs = 4, 1.0, 2

    from fer_video.demo import make_demo_video

    command = "python benchmarks/load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fer-load-") as tmp:
        tmp = Path(tmp)
        clip = make_demo_video(
            tmp / "clip.mp4", width=args.width, height=args.height, fps=10.0, seconds=args.seconds, faces=2
        )
        server = Server(tmp)
        try:
            server.wait_up()
            rss = {"started": rss_mb(server.proc.pid)}
            run_jobs(server.url, clip, 1, 1, tmp / "dl")
            rss["after 1 job"] = rss_mb(server.proc.pid)
            run_jobs(server.url, clip, 1, args.memory_jobs - 1, tmp / "dl")
            rss[f"after {args.memory_jobs} jobs"] = rss_mb(server.proc.pid)
            runs = {n: run_jobs(server.url, clip, n, args.jobs, tmp / "dl") for n in (1, 4)}
            rss[f"after {args.memory_jobs + 2 * args.jobs} jobs"] = rss_mb(server.proc.pid)
        finally:
            server.stop()
    load_after = os.getloadavg()
    seconds = {n: r.seconds for n, r in runs.items()}
    per_minute = {n: round(args.jobs / s * 60, 1) for n, s in seconds.items()}
    result = {
        "command": command,
        "machine": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "clip": {"width": args.width, "height": args.height, "fps": 10.0, "seconds": args.seconds, "faces": 2},
        "jobs": args.jobs,
        "seconds": {f"{n} client{'s' * (n > 1)}": round(s, 2) for n, s in seconds.items()},
        "jobs_per_minute": {f"{n} client{'s' * (n > 1)}": v for n, v in per_minute.items()},
        "annotating_seconds": {f"{n} client{'s' * (n > 1)}": round(r.annotating, 2) for n, r in runs.items()},
        "ratio_4_to_1": round(per_minute[4] / per_minute[1], 2),
        "rss_mb": {k: round(v, 1) for k, v in rss.items()},
    }
    print(f"{result['machine']}, load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print("| clients | jobs | seconds | jobs/min | annotating (s, summed) |\n| --- | --- | --- | --- | --- |")
    for n in (1, 4):
        print(f"| {n} | {args.jobs} | {seconds[n]:.1f} | {per_minute[n]} | {runs[n].annotating:.1f} |")
    print("| server RSS | " + " | ".join(f"{k}: {v:.0f} MB" for k, v in rss.items()) + " |")
    OUT.mkdir(exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    (OUT / "load.json").write_text(text)
    if args.save:
        (RESULTS / f"{args.save}.json").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
