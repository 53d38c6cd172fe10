"""The tiny pipeline folder of the dataset tests, for the benchmark harness tests."""

from tests.data.conftest import model_dir  # noqa: F401
