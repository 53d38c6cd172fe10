"""The ``datasets`` builder of mmmi (the module name gives the dataset name).

datasets >= 4 does not run loading scripts, so the builder is used directly::

    from mmmi_hf.builders.mmmi import MMMI
    builder = MMMI(config_name="dag1", num_samples=1000)
    builder.download_and_prepare()
    ds = builder.as_dataset()

What goes to users is parquet in the Hub layout (``mmmi build``), loaded with
``load_dataset("mmmi", "dag1")``. Both generate through :class:`MMMIPipeline` and give the same
rows for the same config and indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import datasets

from mmmi_hf.causal.spec import list_builtin_configs, load_spec
from mmmi_hf.data import hub_layout

__all__ = ["MMMI", "MMMIConfig"]


@dataclass
class MMMIConfig(datasets.BuilderConfig):
    """One causal configuration (``builders/configs/<name>.yaml``) and what to generate.

    Attributes:
        num_samples: rows of the train split; ``test_samples``: rows of the test split (0: none).
        model: pipeline folder or shipped name of the generators.
        latents, previews: extra columns (latents z1..zN; 8-bit previews, not MI-exact).
        batch_size: samples generated per batch.
    """

    num_samples: int = 1000
    test_samples: int = 0
    model: str = "mmmi-digits"
    latents: bool = False
    previews: bool = False
    batch_size: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check()

    def check(self) -> None:
        """Raise ValueError naming a bad setting (datasets sets overrides after construction)."""
        for key in ("num_samples", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}: expected a positive integer, got {value!r}")
        if isinstance(self.test_samples, bool) or not isinstance(self.test_samples, int) or self.test_samples < 0:
            raise ValueError(f"test_samples: expected a nonnegative integer, got {self.test_samples!r}")


class MMMI(datasets.GeneratorBasedBuilder):
    """Multimodal samples (x1..xN, theta) with exactly known mutual information."""

    BUILDER_CONFIG_CLASS = MMMIConfig
    BUILDER_CONFIGS = [MMMIConfig(name=name, description=load_spec(name).description) for name in list_builtin_configs()]
    DEFAULT_CONFIG_NAME = "dag1"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.config.check()

    def _pipeline(self):
        from mmmi_hf.data.build import load_pipeline

        return load_pipeline(self.config.model, self.config.name)

    def _info(self) -> datasets.DatasetInfo:
        pipe = self._pipeline()
        spec = pipe.scheduler.spec
        pmi = hub_layout.pmi_queries(pipe.scheduler.mutual_information(), spec.modalities)
        return datasets.DatasetInfo(
            description=spec.description,
            features=hub_layout.features_for(spec.names, spec.shape, pmi, latents=self.config.latents, previews=self.config.previews),
        )

    def _split_generators(self, dl_manager):
        splits = [datasets.SplitGenerator(name=datasets.Split.TRAIN, gen_kwargs={"start": 0, "n": self.config.num_samples})]
        if self.config.test_samples:
            splits.append(datasets.SplitGenerator(name=datasets.Split.TEST, gen_kwargs={"start": self.config.num_samples, "n": self.config.test_samples}))
        return splits

    def _generate_examples(self, start: int, n: int):
        pipe = self._pipeline()
        spec = pipe.scheduler.spec
        pmi = hub_layout.pmi_queries(pipe.scheduler.mutual_information(), spec.modalities)
        for batch_start in range(start, start + n, self.config.batch_size):
            count = min(self.config.batch_size, start + n - batch_start)
            columns = hub_layout.sample_columns(pipe, batch_start, count, pmi=pmi, latents=self.config.latents, previews=self.config.previews)
            for row in range(count):
                yield int(columns["index"][row]), {key: values[row] for key, values in columns.items()}
