"""The `mmmi` command: output, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from mmmi_hf.causal.model import CausalModel
from mmmi_hf.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_mi_json(capsys):
    code, out, err = run(capsys, "mi", "dag1", "--json")
    assert code == 0 and err == ""
    assert json.loads(out) == CausalModel.from_spec("dag1").table()


def test_mi_queries_table(capsys):
    code, out, _ = run(capsys, "mi", "blackhole-mass", "-q", "theta;x2", "--query", "x1;x2|theta")
    assert code == 0
    assert "I(theta;x2)" in out and "3.326020" in out and "I(x1;x2|theta)" in out
    assert "│ I(x1;x2) " not in out  # only the queries asked for


def test_mi_shows_solved_coefficient(capsys):
    code, out, _ = run(capsys, "mi", "dag1-sweep-00")
    assert code == 0 and "solved: rho_common x" in out and "I(theta;x1) = 0.134" in out


@pytest.mark.parametrize(
    "argv,pattern",
    [
        (["mi", "nope"], "mmmi: error: spec: 'nope' is neither a YAML file nor a built-in configuration"),
        (["mi", "dag1", "-q", "x1;x9"], "mmmi: error: query 'x1;x9': unknown block 'x9'"),
        (["mi", "missing.yaml"], "mmmi: error: spec: file not found: missing.yaml"),
        (["bench", "estimators", "--configs", "dag1-sweep-07..12"], "mmmi: error: configs: 'dag1-sweep-10' is neither a built-in configuration"),
        (["bench", "regression", "--num-samples", "4"], "mmmi: error: num_samples: expected at least 10 (to leave a held-out test split), got 4"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, argv, pattern):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(pattern) and err.count("\n") == 1


def test_bad_yaml_template_is_one_line(capsys, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\nshape: [1, 2, 2]\nmodalities: 1\ncommon_causes: 1\neta: [1]\nrho_common: [[1]]\n"
        "templates: {x1: [gone.npy]}\n"
    )
    code, _, err = run(capsys, "mi", str(spec))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("mmmi: error: templates.x1[0]: file not found:") and "gone.npy" in err


def test_usage_errors_are_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["mi", "dag1", "--colour"])
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2 and err == "mmmi: error: unrecognized arguments: --colour\n"


def test_configs_lists_builtins(capsys):
    code, out, _ = run(capsys, "configs")
    assert code == 0 and "dag1\n" in out and "decay-a1.6-b1.6" in out


def test_console_script():
    exe = shutil.which("mmmi")
    assert exe, "the console script `mmmi` is not installed"
    done = subprocess.run([exe, "mi", "blackhole-atmosphere", "-q", "theta;x2", "--json"], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"theta;x2": 0.0}
    bad = subprocess.run([exe, "mi", "dag1", "-q", "x1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1


def test_plot_decay_writes_the_figure_and_its_numbers(capsys, tmp_path):
    import csv

    code, out, _ = run(capsys, "plot", "decay", "--configs", "decay-a1.2-b1.6", "decay-a1.6-b1.2", "--out", str(tmp_path / "decay.png"))
    assert code == 0 and "2 configs" in out
    assert (tmp_path / "decay.png").read_bytes()[:4] == b"\x89PNG"
    with open(tmp_path / "decay.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    model = CausalModel.from_spec("decay-a1.6-b1.2")
    row = next(r for r in rows if r["config"] == "decay-a1.6-b1.2" and r["i"] == "4")
    assert float(row["mi_theta_xi"]) == model.mutual_information("theta;x4") and float(row["mi_x1_xi"]) == model.mutual_information("x1;x4")
