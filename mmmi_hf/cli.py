"""The ``mmmi`` command. Bad input prints one line on stderr and exits with status 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from mmmi_hf.causal.information import resolve
from mmmi_hf.causal.spec import list_builtin_configs, load_spec

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _cmd_mi(args: argparse.Namespace) -> None:
    spec, information = resolve(load_spec(args.spec))
    values = information.table(args.query)
    if args.json:
        print(json.dumps(values))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{spec.name}: exact mutual information", title_justify="left")
    table.add_column("quantity")
    table.add_column("nats", justify="right")
    table.add_column("bits", justify="right")
    for query, nats in values.items():
        table.add_row(f"I({query})", f"{nats:.6f}", f"{nats / 0.6931471805599453:.6f}")
    console = Console()
    if spec.description:
        console.print(spec.description, highlight=False)
    console.print(table)
    console.print(
        f"N={spec.modalities} modalities of shape {list(spec.shape)} (d={spec.d}), "
        f"K={spec.common_causes} common cause(s); exact values from the structured covariance",
        highlight=False,
    )
    if spec.solved:
        ((target, achieved),) = spec.solved["achieved"].items()
        console.print(
            f"solved: {spec.solved['coefficient']} x {spec.solved['factor']:.10g} "
            f"= {spec.solved['value']} for I({target}) = {achieved:.10g}",
            highlight=False,
        )


def _cmd_configs(args: argparse.Namespace) -> None:
    print("\n".join(list_builtin_configs()))


def _cmd_sample(args: argparse.Namespace) -> None:
    import torch

    from mmmi_hf.images import modality_grid
    from mmmi_hf.pipelines import MMMIPipeline

    pipe = MMMIPipeline.from_pretrained(args.model)
    pipe.scheduler = pipe.scheduler.with_spec(args.spec)  # the model's generator map, the asked-for causal model
    out = pipe(args.num_samples, generator=torch.Generator().manual_seed(args.seed))
    mi = out.mutual_information
    pairs = ", ".join(f"I({q})={mi[q]:.3f}" for q in list(mi)[: min(3, len(mi))])
    modality_grid(out.modalities, out.theta, args.out, title=f"{pipe.scheduler.spec.name}: {pairs} nats")
    print(f"wrote {args.out}: {args.num_samples} samples of {pipe.scheduler.spec.name} ({pairs} nats)")


def _cmd_build(args: argparse.Namespace) -> None:
    from mmmi_hf.data.build import build_configs, parse_splits

    results = build_configs(
        args.configs, args.out, splits=parse_splits(args.split, args.num_samples), model=args.model,
        shard_size=args.shard_size, num_proc=args.num_proc, latents=args.latents, previews=args.previews,
        progress=args.progress,
    )
    for name, meta in results.items():
        mi = ", ".join(f"I({q})={v:.4f}" for q, v in list(meta["mutual_information"].items())[:3])
        print(f"{args.out}/{name}: {sum(meta['splits'].values())} samples; {mi} nats; "
              f"certificate {meta['certificate_max_h_lip']:.3f} ({meta['certificate_latents']} latents); "
              f"shards {meta['seconds']['shards']:.1f} s on {meta['processes']} process{'es' if meta['processes'] > 1 else ''}, "
              f"checks {meta['seconds']['checks']:.1f} s")


def _cmd_verify(args: argparse.Namespace) -> int:
    from mmmi_hf.data.verify import verify_dataset

    report = verify_dataset(args.dir, args.config, num_samples=args.num_samples, model=args.model)
    if args.json:
        print(json.dumps(report))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=f"verify {args.dir} / {args.config} ({report['samples']} samples)", title_justify="left")
        for column in ("check", "value", "expected", "result"):
            table.add_column(column)
        for name, check in report["checks"].items():
            expected = (f"{check['exact']:.4f} ± {4 * check['standard_error']:.4f}" if "exact" in check
                        else f"≤ {check['limit']:g}" if "limit" in check else "true")
            value = f"{check['value']:.4g}" if isinstance(check["value"], float) else str(check["value"])
            table.add_row(escape(name), value, expected, "pass" if check["passed"] else "FAIL")  # names hold [query]
        Console().print(table)
        print("verified" if report["passed"] else "verification FAILED")
    return 0 if report["passed"] else 1


def _cmd_push(args: argparse.Namespace) -> None:
    from mmmi_hf.data.hub_layout import push_folder

    repo_type = "model" if args.command == "push-model" else "dataset"
    if repo_type == "model" and not (Path(args.dir) / "model_index.json").is_file():
        raise ValueError(f"dir: {args.dir} is not a pipeline folder (no model_index.json); save one with MMMIPipeline.save_pretrained")
    result = push_folder(args.dir, args.repo_id, repo_type=repo_type, private=args.private)
    if result["commit"] is None:
        print(f"{args.repo_id}: already up to date ({result['unchanged']} files)")
    else:
        print(f"{args.repo_id}: commit {result['commit'][:12]}: {len(result['added'])} files sent, "
              f"{len(result['deleted'])} deleted, {result['unchanged']} unchanged")


def _cmd_train(args: argparse.Namespace) -> None:
    import shlex

    from mmmi_hf.flows.data import load_image_source
    from mmmi_hf.flows.quality import SolverSettings
    from mmmi_hf.flows.report import write_generator_folder
    from mmmi_hf.flows.training import TrainConfig, train
    from mmmi_hf.pipelines import MMMICausalScheduler, MMMIPipeline

    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__})
    settings = SolverSettings(args.solver, args.num_steps, args.grid)  # checked before hours of training
    settings.check()
    data = load_image_source(
        cfg.data, split=cfg.split, resolution=cfg.resolution, channels=cfg.channels,
        image_column=cfg.image_column, label_column=cfg.label_column, max_samples=cfg.max_samples,
    )
    spec = args.spec or ("dag1" if cfg.data == "digits" else None)
    scheduler = MMMICausalScheduler.from_spec(spec, solver=settings.solver, num_inference_steps=settings.num_steps, grid=settings.grid) if spec else None
    unets = train(cfg, data)
    if scheduler is not None:  # a full pipeline folder: model_index.json, unets/, scheduler/
        MMMIPipeline(unets=unets, scheduler=scheduler).save_pretrained(cfg.output_dir)
    command = "mmmi " + shlex.join(args.argv)
    figures = write_generator_folder(cfg.output_dir, unets, settings, data=data, command=command, latents=args.eval_latents)
    summary = {k: v for k, v in figures.get("invertibility", {}).items() if k.startswith(("certificate_max", "round_trip"))}
    print(f"wrote {cfg.output_dir}: fidelity {figures['fidelity']['fidelity']:.3f}, {summary}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mmmi", description="Multimodal datasets with exactly known mutual information.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    mi = sub.add_parser("mi", help="exact MI of a causal spec, in nats")
    mi.add_argument("spec", help="built-in configuration name (see `mmmi configs`) or a YAML path")
    mi.add_argument(
        "--query", "-q", action="append",
        help="'A;B', 'A;B|C' or 'A;B;C'; groups are comma lists of theta, x1..xN (repeatable; default: the standard table)",
    )
    mi.add_argument("--json", action="store_true", help="print one JSON object {query: nats}")
    mi.set_defaults(func=_cmd_mi)
    configs = sub.add_parser("configs", help="list the built-in configurations")
    configs.set_defaults(func=_cmd_configs)
    sample = sub.add_parser("sample", help="a quick look: a grid of generated samples, one row per modality")
    sample.add_argument("spec", help="built-in configuration name or a YAML path")
    sample.add_argument("--num-samples", type=int, default=16)
    sample.add_argument("--out", default="grid.png", help="PNG to write (default grid.png)")
    sample.add_argument("--model", default="mmmi-digits", help="pipeline folder or shipped name (default mmmi-digits)")
    sample.add_argument("--seed", type=int, default=0)
    sample.set_defaults(func=_cmd_sample)
    build = sub.add_parser("build", help="materialize configurations as parquet in the Hub layout (works under `accelerate launch`)")
    build.add_argument("configs", nargs="+", help="built-in configuration names or YAML paths")
    build.add_argument("--out", required=True, help="dataset folder (created; other configs in it are kept)")
    build.add_argument("--num-samples", type=int, help="samples of the train split (default 1000)")
    build.add_argument("--split", help="splits and sizes, e.g. train=10000,test=2000")
    build.add_argument("--model", default="mmmi-digits", help="pipeline folder or shipped name (default mmmi-digits)")
    build.add_argument("--shard-size", type=int, default=1000, help="samples per parquet shard")
    build.add_argument("--num-proc", type=int, default=1, help="worker processes on this machine")
    build.add_argument("--latents", action="store_true", help="also store the latents z1..zN")
    build.add_argument("--previews", action="store_true", help="also store 8-bit previews (not MI-exact) for the Hub viewer")
    build.add_argument("--no-progress", dest="progress", action="store_false")
    build.set_defaults(func=_cmd_build)
    verify = sub.add_parser("verify", help="check a built dataset: exact inverse, certificate, PMI vs the stated MI (exit 1 on failure)")
    verify.add_argument("dir", help="dataset folder written by `mmmi build`")
    verify.add_argument("--config", required=True)
    verify.add_argument("--num-samples", type=int, default=256)
    verify.add_argument("--model", help="pipeline folder or shipped name (default: the one recorded in the card)")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=_cmd_verify)
    for name, what in (("push", "a dataset folder"), ("push-model", "a pipeline folder")):
        push = sub.add_parser(name, help=f"publish {what} to the Hub in one commit (idempotent)")
        push.add_argument("dir")
        push.add_argument("--repo-id", required=True, help="OWNER/NAME")
        push.add_argument("--private", action="store_true")
        push.set_defaults(func=_cmd_push)
    _add_train(sub)
    _add_bench(sub)
    return parser


def _add_bench(sub) -> None:
    from mmmi_hf.evaluate.estimators import CRITICS, ESTIMATORS

    bench = sub.add_parser("bench", help="the paper's experiments on built datasets (MI estimators, theta regression)")
    kinds = bench.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    estimators = kinds.add_parser("estimators", help="Table 1 / Fig. 3: variational MI estimators against the exact I(x1;x2)")
    regression = kinds.add_parser("regression", help="Fig. 4 / 7: a shallow CNN regresses theta from x1, against the exact floor")
    for p, out in ((estimators, "mmmi-bench/estimators"), (regression, "mmmi-bench/regression")):
        p.add_argument("--configs", nargs="+", default=["dag1-sweep-00..09"], help="names, YAML paths or ranges such as dag1-sweep-00..09")
        p.add_argument("--out", default=out, help=f"results folder (default {out})")
        p.add_argument("--data-dir", default="mmmi", help="dataset folder; missing configs are built into it (default mmmi)")
        p.add_argument("--num-samples", type=int, default=2000, help="samples per config, 20%% held out (default 2000)")
        p.add_argument("--model", default="mmmi-digits", help="pipeline folder or shipped name for building (default mmmi-digits)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--no-progress", dest="progress", action="store_false")
    estimators.add_argument("--estimators", nargs="+", choices=ESTIMATORS, default=list(ESTIMATORS))
    estimators.add_argument("--critic", choices=CRITICS, default="separable-conv",
                            help="separable-conv (CNN encoders, default), separable (MLP encoders) or joint (MLP on [x, y])")
    estimators.add_argument("--steps", type=int, default=3000, help="training steps per estimator (default 3000)")
    estimators.add_argument("--batch-size", type=int, default=128)
    estimators.add_argument("--learning-rate", type=float, default=1e-3)
    estimators.add_argument("--val-fraction", type=float, default=0.2, help="share of the training pairs for early stopping (0: none)")
    estimators.set_defaults(func=_cmd_bench_estimators)
    regression.add_argument("--epochs", type=int, default=500, help="training epochs per config, as in the paper; the best by validation is kept")
    regression.set_defaults(func=_cmd_bench_regression)
    plot = sub.add_parser("plot", help="figures from the exact engine")
    figures = plot.add_subparsers(dest="figure", required=True, parser_class=_Parser)
    decay = figures.add_parser("decay", help="Fig. 6: I(x1;xi) and I(theta;xi) against i for the decay configurations")
    decay.add_argument("--configs", nargs="+", help="default: every built-in decay-a*-b* configuration")
    decay.add_argument("--out", default="decay.png", help="PNG to write (default decay.png); the numbers go to the same name .csv")
    decay.set_defaults(func=_cmd_plot_decay)


def _cmd_bench_estimators(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from mmmi_hf.evaluate.benchmarks import PAPER_TABLE_1, run_estimator_bench

    result = run_estimator_bench(
        args.configs, out=args.out, data_dir=args.data_dir, num_samples=args.num_samples, estimators=args.estimators,
        critic=args.critic, steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
        val_fraction=args.val_fraction, seed=args.seed,
        model=args.model, progress=args.progress,
    )
    table = Table(title=f"I(x1;x2) estimates vs exact, {len(result['rows']) // len(result['summary'])} configs ({args.critic} critic)",
                  title_justify="left")
    for column in ("estimator", "correlation", "RMSE (nats)", "fit slope", "fit RMSE", "paper corr.", "paper RMSE"):
        table.add_column(column, justify="left" if column == "estimator" else "right")
    for name, s in result["summary"].items():
        paper = PAPER_TABLE_1[name]
        table.add_row(name, f"{s['correlation']:.3f}", f"{s['rmse']:.4f}", f"{s['slope']:.3f}", f"{s['fit_rmse']:.4f}", f"{paper[0]:.3f}", f"{paper[1]:.4f}")
    Console(width=120).print(table)  # wide enough in logs too
    print(f"wrote {args.out}/estimates.csv, summary.csv, curves.json, fig3_estimates.png")


def _cmd_bench_regression(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from mmmi_hf.evaluate.benchmarks import run_regression_bench

    rows = run_regression_bench(args.configs, out=args.out, data_dir=args.data_dir, num_samples=args.num_samples,
                                epochs=args.epochs, seed=args.seed, model=args.model, progress=args.progress)
    table = Table(title="theta from x1: shallow CNN vs the exact floor", title_justify="left")
    for column in ("config", "I(theta;x1)", "test RMSE", "floor sd·exp(-I)", "best epoch"):
        table.add_column(column, justify="left" if column == "config" else "right")
    for r in rows:
        table.add_row(r["config"], f"{r['mi_theta_x1']:.3f}", f"{r['test_rmse']:.4f}", f"{r['bayes_rmse']:.4f}", str(r["best_epoch"]))
    Console(width=120).print(table)
    print(f"wrote {args.out}/regression.csv, fig4_regression.png, fig7_errors.png")


def _cmd_plot_decay(args: argparse.Namespace) -> None:
    from mmmi_hf.evaluate.benchmarks import decay_table, write_csv
    from mmmi_hf.evaluate.plots import plot_decay

    table = decay_table(args.configs or [c for c in list_builtin_configs() if c.startswith("decay-")])
    plot_decay(table, args.out)
    rows = [{"config": name, "i": i + 1, "mi_theta_xi": series["theta"][i], "mi_x1_xi": series["x1"][i - 1] if i else ""}
            for name, series in table.items() for i in range(len(series["theta"]))]
    write_csv(Path(args.out).with_suffix(".csv"), rows)
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.csv')}: {len(table)} configs")


def _channels(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers such as 32,64, got {text!r}")
    return values


def _add_train(sub) -> None:
    from mmmi_hf.flows.ode import GRIDS, SOLVERS

    p = sub.add_parser(
        "train",
        help="train flow-matching generators (works under `accelerate launch`)",
        description="Train ModalityUNets with flow matching; writes OUTPUT_DIR/unets, samples.png, figures.json, README.md.",
    )
    p.add_argument("--data", default="digits", help="digits (bundled), a local imagefolder, a save_to_disk folder, or a Hub dataset name")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--resolution", type=int, help="resize images to RES x RES")
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--image-column")
    p.add_argument("--label-column")
    p.add_argument("--max-samples", type=int)
    p.add_argument("--steps", type=int, default=6000, help="optimizer steps (default 6000)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--sigma-min", type=float, default=0.05, help="data-end noise of the path; > 0 keeps the flow invertible (default 0.05)")
    p.add_argument("--jacobian-weight", type=float, default=0.0, help="weight of the ||dv/dx||_F^2 penalty (Finlay et al. 2020)")
    p.add_argument("--cfg-dropout", type=float, default=0.0, help="label dropout for classifier-free guidance")
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--gradient-accumulation-steps", type=int, default=1)
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in OUTPUT_DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-class", action="store_true", help="one UNet per class instead of one class-conditional UNet")
    p.add_argument("--block-out-channels", type=_channels, default=[32, 64])
    p.add_argument("--layers-per-block", type=int, default=2)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--solver", choices=tuple(SOLVERS), default="midpoint", help="generator map recorded with the model")
    p.add_argument("--num-steps", type=int, default=20)
    p.add_argument("--grid", choices=GRIDS, default="uniform")
    p.add_argument("--spec", help="causal spec of the saved pipeline's scheduler (default: dag1 for digits; none: generators only)")
    p.add_argument("--eval-latents", type=int, default=1000, help="latents for the certificate and round trip (0: skip figures)")
    p.set_defaults(func=_cmd_train)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mmmi``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args) or 0
    except (ValueError, OSError) as err:
        print(f"mmmi: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
