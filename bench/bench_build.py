"""`mmmi build` against the bare pipeline, and its peak memory at two sizes, in one run.

Each measurement runs in its own subprocess (so peak RSS is that process's own):
- the bare pipeline generating N tuples in shard-sized batches (no writing);
- `mmmi build dag1 --num-samples N` into a fresh folder, for N = --small and --large.
Prints samples/s of each, the writing overhead (build time / bare time - 1; goal < 10 %), and
peak RSS at both sizes (goal: flat).

Run: python bench/bench_build.py [--small 1000] [--large 10000] [--model mmmi-digits]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

BARE = """
import json, sys, time, torch
from mmmi_hf.data.build import load_pipeline
pipe = load_pipeline(sys.argv[1], "dag1")
n, shard = int(sys.argv[2]), 1000
start = time.perf_counter()
for s in range(0, n, shard):
    pipe(min(shard, n - s), start=s, return_latents=True, return_pmi=True)
import resource
print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


BUILD = """
import json, resource, sys
from mmmi_hf.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def child(argv: list[str]) -> tuple[float, float, str]:
    """Run a Python subprocess; returns (wall seconds, its own peak RSS in MB, stdout)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", *argv], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, report.get("peak_rss_kb", 0) / 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--model", default="mmmi-digits")
    args = parser.parse_args()
    _, _, out = child([BARE, args.model, str(args.small)])
    bare = json.loads(out.strip().splitlines()[-1])["seconds"]
    with tempfile.TemporaryDirectory() as tmp:
        built, rss_small, _ = child([BUILD, "build", "dag1", "--out", f"{tmp}/a", "--num-samples", str(args.small), "--model", args.model, "--no-progress"])
    # build includes start-up and the card checks; time the generation part alone from a second, larger run
    with tempfile.TemporaryDirectory() as tmp:
        built_large, rss_large, _ = child([BUILD, "build", "dag1", "--out", f"{tmp}/b", "--num-samples", str(args.large), "--model", args.model, "--no-progress"])
    fixed = (built * args.large - built_large * args.small) / (args.large - args.small)  # start-up + card, per run
    per_sample_build = (built_large - fixed) / args.large
    print(f"bare pipeline: {args.small / bare:.1f} tuples/s ({args.small} tuples in {bare:.1f} s)")
    print(f"mmmi build: {args.small} samples in {built:.1f} s, {args.large} in {built_large:.1f} s "
          f"(fixed cost {fixed:.1f} s: start-up, card, checks); {1 / per_sample_build:.1f} samples/s while generating")
    print(f"writing overhead: {100 * (per_sample_build * args.small / bare - 1):.1f} % (goal < 10 %)")
    print(f"peak RSS: {rss_small:.0f} MB at {args.small} samples, {rss_large:.0f} MB at {args.large} samples")


if __name__ == "__main__":
    main()
