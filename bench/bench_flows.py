"""Figures of a generator folder (default: the shipped mmmi-digits), measured in one run.

- class fidelity (RBF-SVM fitted on the real digits, 100 generated samples per class);
- certificate (max per-step h Lip) and exact-inverse round trip on --latents latents with the
  default generator map, the reversed ODE beside it;
- a table over solver x steps (certificate, round trip, NFE) on --table-latents latents;
- throughput (samples/s) and its ratio to the bare UNet forward cost for the same NFE;
- singular values of F's Jacobian.

With --write, the figures go into the folder's figures.json and its model card is re-rendered.

Run: python bench/bench_flows.py [--model DIR] [--latents 1000] [--table-latents 100] [--write] [--reuse]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mmmi_hf.atomic import atomic_write_text
from mmmi_hf.flows import quality
from mmmi_hf.flows.data import load_image_source
from mmmi_hf.flows.report import FIGURES, measure, write_card
from mmmi_hf.flows.unets import ModalityUNets
from mmmi_hf.pretrained import pretrained_path

TABLE = [
    ("euler", 40, "uniform"),
    ("midpoint", 20, "uniform"),
    ("midpoint", 30, "uniform"),
    ("midpoint", 40, "uniform"),
    ("midpoint", 40, "quadratic"),
    ("heun", 40, "uniform"),
    ("rk4", 20, "uniform"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="generator folder (default: the shipped mmmi-digits)")
    parser.add_argument("--latents", type=int, default=1000)
    parser.add_argument("--table-latents", type=int, default=100)
    parser.add_argument("--write", action="store_true", help="update the folder's figures.json and model card")
    parser.add_argument("--reuse", action="store_true", help="keep the figures already in figures.json; measure only the table")
    args = parser.parse_args()
    folder = args.model or pretrained_path()
    unets = ModalityUNets.from_pretrained(folder / "unets").eval()
    old = json.loads((folder / FIGURES).read_text()) if (folder / FIGURES).exists() else {}
    settings = quality.SolverSettings(**old.get("generator", {}))
    train_args = json.loads((folder / "training_args.json").read_text())
    data = load_image_source(train_args["data"])
    console = Console()

    remeasure = not (args.reuse and "invertibility" in old)
    figures = {**old, **measure(unets, data, settings, latents=args.latents)} if remeasure else dict(old)
    if not remeasure:
        console.print(f"(figures below are the ones in {folder / FIGURES}, measured by `mmmi train`)")
    fid, inv, thr, sv = (figures[k] for k in ("fidelity", "invertibility", "throughput", "singular_values"))
    console.print(f"[bold]{folder.name}[/] generator map: {settings.kwargs()} (NFE {settings.nfe})", highlight=False)
    console.print(f"class fidelity {fid['fidelity']:.4f} on {fid['samples']} samples (classifier held-out accuracy {fid['classifier_held_out_accuracy']:.4f}); per class {fid['per_class']}", highlight=False)
    console.print(
        f"certificate: max per-step h·Lip {inv['certificate_max_h_lip']:.4f} over {inv['latents']} latents (per step {inv['certificate_per_step']})\n"
        f"exact inverse round trip: median {inv['round_trip_median']:.2e}, max {inv['round_trip_max']:.2e}, all converged {inv['all_converged']}; "
        f"reversed ODE: median {inv['reversed_ode_median']:.2e}, max {inv['reversed_ode_max']:.2e}",
        highlight=False,
    )
    console.print(
        f"throughput: {thr['samples_per_second']:.0f} samples/s; bare UNet for the same NFE {thr['bare_unet_samples_per_second']:.0f} samples/s; "
        f"solver overhead {100 * thr['solver_overhead']:.1f} % (batch {thr['batch_size']}, {thr['threads']} threads)",
        highlight=False,
    )
    console.print(f"Jacobian of F ({sv['latents']} latents): smallest singular value median {sv['min_median']:.3g}, min {sv['min_min']:.3g}; largest median {sv['max_median']:.3g}", highlight=False)

    rows = []
    table = Table(title=f"solver x steps on {args.table_latents} latents")
    for name in ("solver", "steps", "grid", "NFE", "max h·Lip", "round trip median", "round trip max", "reversed ODE median", "reversed ODE max"):
        table.add_column(name, justify="right")
    for solver, steps, grid in TABLE:
        row = quality.invertibility(unets, quality.SolverSettings(solver, steps, grid), n=args.table_latents)
        rows.append(row)
        table.add_row(solver, str(steps), grid, str(row["nfe"]), f"{row['certificate_max_h_lip']:.3f}", f"{row['round_trip_median']:.2e}",
                      f"{row['round_trip_max']:.2e}", f"{row['reversed_ode_median']:.2e}", f"{row['reversed_ode_max']:.2e}")
    console.print(table)
    figures["solver_table"] = rows
    if args.write:
        atomic_write_text(folder / FIGURES, json.dumps(figures, indent=2))
        write_card(folder, figures, shipped=args.model is None)
        console.print(f"updated {folder / FIGURES} and {folder / 'README.md'}")


if __name__ == "__main__":
    main()
