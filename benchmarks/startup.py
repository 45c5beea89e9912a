"""Start-up time of the ``fer-video`` command, as ratios to ``python -c "import torch"`` on the same machine.

    python benchmarks/startup.py [--runs 5] [--json PATH]

Runs, each ``--runs`` times in a fresh interpreter, interleaved (so a change in the machine's load touches all
of them alike), and reports the median wall seconds, the median CPU seconds (user + system, from ``wait4``:
steadier than wall time on a shared machine) and both as ratios to ``import torch``:

  import torch             python -c "import torch": the reference
  --help                   fer-video --help
  annotate --help          fer-video annotate --help
  annotate one frame       fer-video annotate on a one-frame 640x360 clip with two faces and audio (all outputs)

``fer-video`` is run as ``python -m fer_video`` from this checkout. The machine (``lscpu``) and the load
average before and after are printed too: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict[str, str]:
    """CPU model and count from ``lscpu``, and the load average now."""
    info = {"cpu": "", "cpus": ""}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        out = ""
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            info["cpu"] = value.strip()
        elif key.strip() == "CPU(s)":
            info["cpus"] = value.strip()
    info["loadavg"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def one_frame_clip(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from fer_video.demo import make_demo_video

    return make_demo_video(folder / "one.mp4", width=640, height=360, fps=25.0, seconds=0.04, noface_from=None)


def commands(clip: Path, out: Path) -> dict[str, list[str]]:
    py, fv = sys.executable, [sys.executable, "-m", "fer_video"]
    return {
        "import torch": [py, "-c", "import torch"],
        "--help": [*fv, "--help"],
        "annotate --help": [*fv, "annotate", "--help"],
        "annotate one frame": [*fv, "annotate", str(clip), "--out", str(out), "--quiet"],
    }


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run of ``cmd``; raises if it fails."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {p.stderr.read().decode(errors='replace')[-2000:]}")
    p.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime


def measure(runs: int) -> dict[str, dict[str, float]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cmds = commands(one_frame_clip(folder), folder / "out")
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
        for cmd in cmds.values():  # warm the file cache once
            timed(cmd, env)
        for _ in range(runs):
            for name, cmd in cmds.items():
                shutil.rmtree(folder / "out", ignore_errors=True)
                samples[name].append(timed(cmd, env))
    ref_wall = statistics.median(w for w, _ in samples["import torch"])
    ref_cpu = statistics.median(c for _, c in samples["import torch"])
    result = {}
    for name, pairs in samples.items():
        wall, cpu = statistics.median(w for w, _ in pairs), statistics.median(c for _, c in pairs)
        result[name] = {
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "wall_ratio": round(wall / ref_wall, 3),
            "cpu_ratio": round(cpu / ref_cpu, 3),
            "wall_runs": [round(w, 3) for w, _ in pairs],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (median reported)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    before = machine()
    result = measure(args.runs)
    after = machine()["loadavg"]
    print(f"machine: {before['cpu']}, {before['cpus']} CPUs; load average before {before['loadavg']}, after {after}")
    print(f"{'command':<20} {'wall s':>8} {'x torch':>8} {'CPU s':>8} {'x torch':>8}   wall runs")
    for name, r in result.items():
        runs = " ".join(f"{w:.2f}" for w in r["wall_runs"])
        print(
            f"{name:<20} {r['wall_s']:>8.2f} {r['wall_ratio']:>8.2f} {r['cpu_s']:>8.2f} {r['cpu_ratio']:>8.2f}   {runs}"
        )
    if args.json is not None:
        report = {"machine": before, "loadavg_after": after, "runs": args.runs, "results": result}
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
