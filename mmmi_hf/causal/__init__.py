"""The causal model: spec, templates, exact information and sampling.

Names are imported on first use, so the torch-free parts (spec, information) load fast.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CausalModel": "model",
    "LatentSample": "model",
    "LatentInformation": "information",
    "Query": "information",
    "parse_query": "information",
    "resolve": "information",
    "standard_queries": "information",
    "CausalSpec": "spec",
    "dump_spec": "spec",
    "list_builtin_configs": "spec",
    "load_spec": "spec",
    "build_templates": "templates",
    "make_template": "templates",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
