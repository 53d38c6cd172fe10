"""A tiny pipeline folder shared by the dataset tests."""

import pytest

from mmmi_hf.pipelines import MMMICausalScheduler, MMMIPipeline
from tests.flows.tiny import tiny_unets


@pytest.fixture(scope="package")
def model_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("tiny") / "pipe"
    MMMIPipeline(unets=tiny_unets(num_classes=10), scheduler=MMMICausalScheduler.from_spec("dag1", num_inference_steps=3)).save_pretrained(folder)
    (folder / "README.md").write_text("---\nlibrary_name: diffusers\n---\n# tiny test pipeline\n")
    return str(folder)
