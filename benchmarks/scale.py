"""Scaling benchmark of the batch: one process against Ray with 1 and 2 workers, and a simulated two-node cluster.

    python benchmarks/scale.py [--videos 8] [--seconds 10] [--width 1280 --height 720] [--save NAME]
    python benchmarks/scale.py --tiny          # 2 short small clips: checks the script runs, measures nothing

N synthetic clips (``fer_video.demo.make_demo_video``, package-shipped face photos) are annotated by:
  one-process   ``batch.run_batch`` with the models loaded once, torch on every core (what ``fer-video annotate`` does)
  ray-1         ``ray_engine.run_batch_ray`` on a local Ray, 1 worker with every core as torch threads
  ray-2         the same, 2 workers, cores / 2 threads each
  cluster-2     ``ray.cluster_utils.Cluster``: two Ray nodes on this machine with cores / 2 CPUs each, 2 workers;
                prints which node annotated which video (the work spread over the nodes)
Every run writes into its own folder; its timeline CSVs are compared with the one-process run (identical, or
the largest difference of a probability). Times include loading the models (in every worker) but not starting
Ray. Run it on a quiet machine: the numbers are only worth their ratios when nothing else runs.
Output: a table on stdout, JSON in benchmarks/out/ (``--save NAME`` also writes benchmarks/results/NAME.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
RESULTS = HERE / "results"


def make_clips(folder: Path, n: int, width: int, height: int, seconds: float) -> list[Path]:
    from fer_video.demo import make_demo_video

    clips = []
    for i in range(n):  # one and two faces in turn, so the videos are not all the same work
        path = folder / f"clip{i:02d}.mp4"
        make_demo_video(path, width=width, height=height, seconds=seconds, faces=1 + i % 2, noface_from=None)
        clips.append(path)
    return clips


def csv_difference(out: Path, reference: Path) -> float | None:
    """0.0 when every timeline CSV is byte-identical to the reference's, else the largest difference of a
    number; None when the tables do not even have the same rows."""
    worst = 0.0
    for ref in sorted(reference.glob("*.timeline.csv")):
        mine = out / ref.name
        if mine.read_bytes() == ref.read_bytes():
            continue
        a, b = pd.read_csv(mine), pd.read_csv(ref)
        if a.shape != b.shape or not a["emotion"].fillna("").equals(b["emotion"].fillna("")):
            return None
        numbers = a.select_dtypes("number").columns
        worst = max(worst, float((a[numbers] - b[numbers]).abs().max().max()))
    return worst


def one_process(clips: list[Path], out: Path, settings) -> dict:
    from fer_video.batch import run_batch
    from fer_video.stages import load_models

    t = time.perf_counter()
    models = load_models(settings)
    rows = run_batch(clips, out, settings, models=models)
    return {"seconds": time.perf_counter() - t, "rows": rows, "threads": models.compute.threads, "workers": 1}


def on_ray(clips: list[Path], out: Path, settings, workers: int, nodes_log: Path | None = None) -> dict:
    from fer_video.ray_engine import RayOptions, run_batch_ray

    hook = None
    if nodes_log is not None:
        nodes_log.mkdir(parents=True, exist_ok=True)

        def hook(name, progress, folder=nodes_log):  # runs on the worker: notes the node that has the video
            import ray

            (folder / f"{name}.node").write_text(ray.get_runtime_context().get_node_id())

    t = time.perf_counter()
    rows = run_batch_ray(clips, out, settings, RayOptions(workers=workers), worker_hook=hook)
    return {"seconds": time.perf_counter() - t, "rows": rows, "workers": workers}


def run(args: argparse.Namespace) -> list[dict]:
    import ray

    from fer_video.device import cpu_cores, plan_workers
    from fer_video.types import Settings

    cores = cpu_cores()
    settings = Settings(device="cpu", write_video=not args.no_video)
    work = Path(tempfile.mkdtemp(prefix="fer-scale-"))
    clips = make_clips(work / "in", args.videos, args.width, args.height, args.seconds)
    results = [{"run": "one-process", **one_process(clips, work / "one-process", settings)}]
    for workers in (1, 2):
        ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            plan = plan_workers([cores], [0], workers)
            r = on_ray(clips, work / f"ray-{workers}", settings, workers)
            results.append({"run": f"ray-{workers}", **r, "workers": plan.workers, "threads": plan.cpus})
        finally:
            ray.shutdown()
    results.append(cluster_run(clips, work, settings, cores))
    frames = sum(r.frames or 0 for r in results[0]["rows"])
    for r in results:
        r["ok"] = sum(row.status == "ok" for row in r.pop("rows"))
        r["videos_per_s"] = round(args.videos / r["seconds"], 4)
        r["frames_per_s"] = round(frames / r["seconds"], 2)
        r["speed_up"] = round(results[0]["seconds"] / r["seconds"], 3)
        r["csv_max_difference"] = csv_difference(work / r["run"], work / "one-process")
        r["seconds"] = round(r["seconds"], 2)
    return results


def cluster_run(clips: list[Path], work: Path, settings, cores: int) -> dict:
    """Two Ray nodes on this one machine, one worker each: the videos go to both nodes."""
    import ray
    from ray.cluster_utils import Cluster

    per_node = max(1, cores // 2)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": per_node, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=per_node)
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        try:
            r = on_ray(clips, work / "cluster-2", settings, 2, nodes_log=work / "nodes")
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()
    spread = Counter(p.read_text()[:8] for p in (work / "nodes").glob("*.node"))
    return {"run": "cluster-2", **r, "threads": per_node, "videos_per_node": dict(spread)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0, help="length of each clip")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--no-video", action="store_true", help="CSV, summary and plot only (no H.264 encoding)")
    p.add_argument("--tiny", action="store_true", help="2 clips of 1 s at 320x180: checks that the script runs")
    p.add_argument("--save", metavar="NAME", help="also write benchmarks/results/NAME.json")
    args = p.parse_args()
    if args.tiny:
        args.videos, args.seconds, args.width, args.height = 2, 1.0, 320, 180
    results = run(args)
    columns = ["run", "workers", "threads", "ok", "seconds", "videos_per_s", "frames_per_s", "speed_up"]
    print(pd.DataFrame(results)[[*columns, "csv_max_difference"]].to_string(index=False))
    for r in results:
        if "videos_per_node" in r:
            print(f"{r['run']}: videos per node {r['videos_per_node']}")
    report = {
        "machine": platform.processor() or platform.machine(),
        "args": {k: v for k, v in vars(args).items() if k != "save"},
        "results": results,
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "scale.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.save:
        (RESULTS / f"{args.save}.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
