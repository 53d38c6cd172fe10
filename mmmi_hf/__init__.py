"""mmmi-hf: realistic multimodal datasets whose mutual information is known exactly."""

from importlib.metadata import PackageNotFoundError, version

from mmmi_hf.causal import (
    CausalModel,
    CausalSpec,
    LatentInformation,
    LatentSample,
    dump_spec,
    list_builtin_configs,
    load_spec,
    parse_query,
)

try:
    __version__ = version("mmmi-hf")
except PackageNotFoundError:  # running from a checkout without installing
    __version__ = "0.0.0"

__all__ = [
    "CausalModel",
    "CausalSpec",
    "LatentInformation",
    "LatentSample",
    "__version__",
    "dump_spec",
    "list_builtin_configs",
    "load_spec",
    "parse_query",
]
