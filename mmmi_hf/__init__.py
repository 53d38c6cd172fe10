"""mmmi-hf: realistic multimodal datasets whose mutual information is known exactly.

Public names are imported on first use, so ``mmmi mi`` never loads torch.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("mmmi-hf")
except PackageNotFoundError:  # running from a checkout without installing
    __version__ = "0.0.0"

_EXPORTS = {
    "MMMIPipeline": "mmmi_hf.pipelines",
    "MMMIPipelineOutput": "mmmi_hf.pipelines",
    "MMMICausalScheduler": "mmmi_hf.pipelines",
    "ModalityUNets": "mmmi_hf.flows.unets",
} | {
    name: "mmmi_hf.causal"
    for name in (
        "CausalModel",
        "CausalSpec",
        "LatentInformation",
        "LatentSample",
        "dump_spec",
        "list_builtin_configs",
        "load_spec",
        "parse_query",
        "resolve",
    )
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
