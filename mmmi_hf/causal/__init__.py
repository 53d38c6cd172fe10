"""The causal model: spec, templates, exact information and sampling."""

from mmmi_hf.causal.information import LatentInformation, Query, parse_query, standard_queries
from mmmi_hf.causal.model import CausalModel, LatentSample
from mmmi_hf.causal.spec import CausalSpec, dump_spec, list_builtin_configs, load_spec
from mmmi_hf.causal.templates import build_templates, make_template

__all__ = [
    "CausalModel",
    "CausalSpec",
    "LatentInformation",
    "LatentSample",
    "Query",
    "build_templates",
    "dump_spec",
    "list_builtin_configs",
    "load_spec",
    "make_template",
    "parse_query",
    "standard_queries",
]
