"""``python -m wkbnoise eval``: bad input exits 2 with one line; a small run on a weight file end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_line_error


@pytest.fixture(scope="module")
def lenet_file(tmp_path_factory):
    """A LeNet-5 weight file with random weights, written without torch (safetensors + metadata)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    shapes = {"conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,), "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
              "fc1.weight": (120, 400), "fc1.bias": (120,), "fc2.weight": (84, 120), "fc2.bias": (84,),
              "fc3.weight": (10, 84), "fc3.bias": (10,)}
    tensors = {k: (rng.standard_normal(s) / np.sqrt(np.prod(s[1:]) if len(s) > 1 else 10)).astype(np.float32)
               for k, s in shapes.items()}
    path = tmp_path_factory.mktemp("model") / "lenet5.safetensors"
    save_file(tensors, str(path), metadata={
        "format": "pt", "wkbnoise.arch": "lenet5", "wkbnoise.config": "{}", "wkbnoise.task": "classifier",
        "wkbnoise.input": json.dumps({"shape": [1, 28, 28], "mean": 0.1307, "std": 0.3081})})
    return path


@pytest.mark.parametrize("args, fragments", [
    (["--methods", "tac,magic"], ["--methods", "magic"]),
    (["--budgets", "-1"], ["--budgets", ">= 0"]),
    (["--p-flip", "0.5"], ["--p-flip", "< 0.5"]),
    (["--p-flip", "0.7"], ["--p-flip"]),
    (["--trials", "0"], ["--trials"]),
    (["--p-flip", "0.1", "--material", "SiO2"], ["--p-flip"]),
    (["--labels", "nowhere.safetensors"], ["--labels", "no such file"]),
    (["--code", "hamming"], ["code", "bch-K-tT"]),
])
def test_bad_flags_exit_2_one_line(cli, args, fragments):
    assert_one_line_error(cli("eval", *args), *fragments)


def test_missing_file_exits_2(cli):
    assert_one_line_error(cli("eval", "no/such/model.safetensors"), "no such file")


def test_more_images_than_the_data_is_refused(cli, tmp_path):
    out = tmp_path / "run.h5"
    assert_one_line_error(cli("eval", "--images", "1001", "--trials", "1", "--out", str(out)), "1001", "1000")
    assert not out.exists()  # refused before any work


def test_nan_bias_is_refused_naming_it(cli, lenet_file, tmp_path):
    from safetensors.numpy import load_file, save_file
    from wkbnoise.runtime.loader import read_header

    tensors = load_file(str(lenet_file))
    tensors["fc2.bias"][5] = np.nan
    bad = tmp_path / "nan.safetensors"
    save_file(tensors, str(bad), metadata=read_header(str(lenet_file))[1])
    assert_one_line_error(cli("eval", str(bad), "--trials", "1", "--images", "20", "--methods", "tac",
                              "--budgets", "1"), "non-finite", "fc2.bias")


@pytest.mark.slow
def test_eval_file_end_to_end(cli, lenet_file, tmp_path):
    out = tmp_path / "run.h5"
    plan = tmp_path / "plan.json"
    args = ("eval", str(lenet_file), "--trials", "2", "--images", "60", "--budgets", "0.25",
            "--methods", "none,magnitude,tac", "--p-flip", "0.01", "--out", str(out), "--plan-json", str(plan),
            "--code", "secded-72-64")
    res = cli(*args, "--json")
    assert res.returncode == 0, res.stderr
    doc = res.json()
    assert res.stdout.count("\n") == 1  # exactly one JSON object
    (summary,) = doc["summary"]
    assert summary["model"] == "lenet5" and summary["rates"] == "p=0.01"
    points = doc["models"][0]["points"]
    assert {p["method"] for p in points} >= {"none", "magnitude", "tac", "uniform-msp"}
    # the crossing search may extend a point beyond the grid's 2 trials; intervals stay inside [0, 1]
    assert all(p["trials"] >= 2 and 0 <= p["lo"] <= p["mean"] <= p["hi"] <= 1 for p in points)
    assert doc["interval"].startswith("Student-t")
    # budgets are equal: every point of the 0.25 b/w grid costs at most floor(0.25 N) bits
    n = 6 * 25 + 16 * 150 + 120 * 400 + 84 * 120 + 10 * 84
    grid = [p for p in points if p["grid_budget"] == 0.25]
    assert {p["method"] for p in grid} == {"none", "magnitude", "tac"}
    assert all(p["cost_bits"] <= int(0.25 * n) for p in grid)
    # the 60 images are a stratified sample: 6 per digit
    assert doc["models"][0]["label_histogram"] == {str(c): 6 for c in range(10)}
    # every method has its crossing, with the trials it took
    assert set(summary["crossings"]) == {"none", "uniform-msp", "magnitude", "tac"}
    assert all(c["points"] and all(p["trials"] >= 2 for p in c["points"]) for c in summary["crossings"].values())
    assert out.exists()
    # same command again: resumes from the run file, same numbers
    again = cli(*args, "--json")
    assert again.json()["models"] == doc["models"]
    # another configuration on the same file is refused
    assert_one_line_error(cli("eval", str(lenet_file), "--trials", "3", "--images", "60", "--out", str(out)),
                          "another configuration")
    # the text form prints the per-method table and the summary
    text = cli("eval", str(lenet_file), "--trials", "2", "--images", "60", "--budgets", "0.25",
               "--methods", "none,magnitude,tac", "--p-flip", "0.01", "--out", str(out), "--code", "secded-72-64")
    assert text.returncode == 0 and "C_U/C_TAC" in text.stdout and "95 % CI" in text.stdout
    plans = json.loads(plan.read_text())
    for p in plans:
        assert p["code"] == "secded-72-64"
        assert p["check_bits"] == sum(x["check_bits"] for x in p["layers"])


def test_eval_refuses_a_code_without_decoder_table(cli):
    assert_one_line_error(cli("eval", "--code", "bch-64-t8"), "no decoder table")
