"""fer-video at a git revision against the working tree, run alternately on one video (with the floor between).

    python benchmarks/ab_revisions.py REV VIDEO [--rounds 4] [--save NAME]

A detached worktree of REV is made in a temporary folder; each round runs the ffmpeg floor, then
``annotate_video`` with the default settings from REV, then from the working tree, each in a fresh process.
On a machine whose speed drifts, alternating is what makes the two comparable; the medians are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = """
import json, sys, time
root = sys.argv[1]
# the editable install's finder would import the working tree's package whatever sys.path says
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, root)
import fer_video.pipeline as P
from fer_video.types import Settings
t, c = time.perf_counter(), time.process_time()
r = P.annotate_video(sys.argv[2], sys.argv[3], Settings(), name="ab")
wall, cpu = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"src": P.__file__, "frames": r.frames, "wall": wall, "cpu": cpu}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rev")
    p.add_argument("video")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--save", metavar="NAME", help="also write benchmarks/results/NAME.json")
    args = p.parse_args(argv)
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    from speed import run_floor_ffmpeg

    from fer_video.types import Settings

    defaults = Settings()

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "rev"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), args.rev], cwd=ROOT, check=True)
        try:
            for k in range(args.rounds):
                floor = run_floor_ffmpeg(Path(args.video), defaults.crf, defaults.preset, 0, "floor-ab")
                if "error" in floor:
                    raise SystemExit(f"the floor failed: {floor['error']}")
                rows.append({"round": k + 1, "run": "floor", "wall": floor["seconds"]})
                for name, root in ((args.rev, tree), ("working tree", ROOT)):
                    out = Path(tmp) / f"out-{k}-{len(rows)}"
                    cmd = [sys.executable, "-c", CHILD, str(root), args.video, str(out)]
                    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                    rows.append({"round": k + 1, "run": name, **res})
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    summary = {
        name: round(statistics.median(r["wall"] for r in rows if r["run"] == name), 3)
        for name in ("floor", args.rev, "working tree")
    }
    print(json.dumps({"median_wall_s": summary}))
    if args.save:
        report = {"command": "python benchmarks/ab_revisions.py " + " ".join(argv or sys.argv[1:]), "rows": rows}
        report["median_wall_s"], report["loadavg_at_start"] = summary, os.getloadavg()
        (HERE / "results" / f"{args.save}.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
