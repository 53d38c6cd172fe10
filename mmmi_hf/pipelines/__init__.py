"""The diffusers pipeline and its causal-model scheduler."""

from mmmi_hf.pipelines.pipeline_mmmi import MMMIPipeline, MMMIPipelineOutput
from mmmi_hf.pipelines.scheduling_causal import MMMICausalScheduler

__all__ = ["MMMICausalScheduler", "MMMIPipeline", "MMMIPipelineOutput"]
