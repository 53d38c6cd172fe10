"""`mmmi build` against the bare pipeline, and its peak memory at two sizes, in one run.

Each measurement runs in its own subprocess (so peak RSS is that process's own), one at a
time, with the same torch threads:
- the bare pipeline generating N tuples in shard-sized batches, no writing;
- the build of dag1 with N samples into a fresh folder; it reports the wall time of making its
  shards, split into generating (the pipeline) and writing (parquet + rename), apart from the
  fixed time of the card's checks.
Bare and build alternate for --rounds rounds at N = --small (the fastest of each is kept); then
one build at N = --large. Prints samples/s of each and the writing overhead two ways: side by
side (build shards / bare - 1; separate processes, so machine noise of several % shows) and
within the build (write / generate; same process, same moment); goal < 10 %. Then the fixed
time per build and peak RSS at both sizes (goal: flat).

Run: python bench/bench_build.py [--small 1000] [--large 10000] [--rounds 2] [--model mmmi-digits]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

BARE = """
import json, resource, sys, time
from mmmi_hf.data.build import load_pipeline
pipe = load_pipeline(sys.argv[1], "dag1")
n, shard = int(sys.argv[2]), 1000
start = time.perf_counter()
for s in range(0, n, shard):
    pipe(min(shard, n - s), start=s, return_latents=True, return_pmi=True)
print(json.dumps({"shards": time.perf_counter() - start, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

BUILD = """
import json, resource, sys
from mmmi_hf.data.build import build_configs
meta = build_configs(["dag1"], sys.argv[3], splits={"train": int(sys.argv[2])}, model=sys.argv[1], progress=False)["dag1"]
print(json.dumps({**meta["seconds"], "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def child(script: str, *argv: str) -> dict:
    """Run a Python subprocess; returns its JSON report (seconds, peak RSS in kB)."""
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="mmmi-digits")
    args = parser.parse_args()
    bare, built = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            bare.append(child(BARE, args.model, str(args.small)))
            built.append(child(BUILD, args.model, str(args.small), f"{tmp}/small{r}"))
            print(f"round {r + 1}: bare {bare[-1]['shards']:.1f} s, build shards {built[-1]['shards']:.1f} s "
                  f"+ checks {built[-1]['checks']:.1f} s", flush=True)
        large = child(BUILD, args.model, str(args.large), f"{tmp}/large")
    t_bare = min(b["shards"] for b in bare)
    t_build = min(b["shards"] for b in built)
    print(f"bare pipeline: {args.small / t_bare:.1f} tuples/s ({args.small} tuples in {t_bare:.1f} s)")
    print(f"mmmi build: {args.small / t_build:.1f} samples/s ({args.small} samples written in {t_build:.1f} s); "
          f"{args.large / large['shards']:.1f} samples/s at {args.large} ({large['shards']:.1f} s)")
    write = sum(b["write"] for b in built) + large["write"]
    generate = sum(b["generate"] for b in built) + large["generate"]
    print(f"writing overhead: side by side {100 * (t_build / t_bare - 1):+.1f} %; within the builds {100 * write / generate:.2f} % "
          f"({write:.1f} s writing parquet vs {generate:.1f} s generating) (goal < 10 %)")
    print(f"fixed per build (card checks): {min(b['checks'] for b in built):.1f} s")
    print(f"peak RSS: {built[0]['peak_rss_kb'] / 1024:.0f} MB at {args.small} samples, "
          f"{large['peak_rss_kb'] / 1024:.0f} MB at {args.large} samples (bare pipeline {bare[0]['peak_rss_kb'] / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
