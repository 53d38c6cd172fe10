"""Pairs per second of the default pipeline (the shipped mmmi-digits on dag1) on this machine,
beside the bare generator cost, measured in one run.

Run: python bench/bench_pipeline.py [--num-samples 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mmmi_hf.pipelines import MMMIPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mmmi-digits")
    parser.add_argument("--num-samples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pipe = MMMIPipeline.from_pretrained(args.model)
    n = args.num_samples
    pipe(8, generator=torch.Generator().manual_seed(0))  # warm-up
    z = pipe.scheduler.sample_latents(n, 0).z
    pipeline_times, latent_times, generator_times = [], [], []
    for r in range(args.repeats):
        start = time.perf_counter()
        pipe(n, generator=torch.Generator().manual_seed(r))
        pipeline_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        pipe.scheduler.sample_latents(n, r)
        latent_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        pipe.generate(z)
        generator_times.append(time.perf_counter() - start)
    t_pipe, t_lat, t_gen = (statistics.median(t) for t in (pipeline_times, latent_times, generator_times))
    m = pipe.scheduler.spec.modalities
    print(f"{args.model} on {pipe.scheduler.spec.name}: {m} modalities, generator map {pipe.scheduler.ode_settings}, {torch.get_num_threads()} threads")
    print(f"pipeline: {n / t_pipe:.1f} tuples/s ({n} tuples of {m} images in {t_pipe:.2f} s)")
    print(f"  of which latents (causal model) {t_lat:.3f} s, generators {t_gen:.2f} s ({n * m / t_gen:.1f} images/s)")


if __name__ == "__main__":
    main()
