"""The ``mmmi`` command. Bad input prints one line on stderr and exits with status 2."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mmmi``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, OSError) as err:
        print(f"mmmi: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
