"""Same seed, same numbers at any BLAS thread count: G_l, the response F, rho* and the plans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, numpy as np
from wkbnoise import zoo, FlipRates
from wkbnoise.allocation import budget_bits, greedy_plan, rho_star
from wkbnoise.distortion import fit_response
from wkbnoise.evaluation.campaign import Evaluator
from wkbnoise.sensitivity import bias_distortion, layer_sensitivities
model = zoo.load("lenet5")
calib = zoo.calibration_images()[:96]
x = model.preprocess(calib)
ev = Evaluator(model, calib[:4], None)
sens = layer_sensitivities(model, x, base_weights=ev.int8_weights, draws=2, seed=1)
rates = FlipRates.symmetric(0.1, 8)
stats = ev.layer_stats(rates, sens.as_dict())
curve = fit_response(model, x, ev.quantized, stats, levels=3, draws=2, seed=1)
bias = [bias_distortion(model, x, ev.expected_weights(rates, {n: m for n in ev.names}), base_weights=ev.int8_weights)
        for m in (0, 1)]
rho = [rho_star(stats, m, bias[m] if m < 2 else 0.0, response=curve)["rho"] for m in range(1, 9)]
plans = [greedy_plan(stats, budget_bits(stats, b)) for b in (0.25, 0.5, 1.0, 2.0)]
print(json.dumps({"G": [float(g).hex() for g in sens.G], "F": [float(v).hex() for v in curve.d.ravel()],
                  "bias": [float(v).hex() for v in bias], "rho": [float(v).hex() for v in rho], "plans": plans}))
"""


def _run(threads: int) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600,
                         check=True, cwd=str(ROOT))
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_same_numbers_at_one_and_two_blas_threads():
    one, two = _run(1), _run(2)
    assert one == two
    assert len(one["G"]) == 5 and len(set(one["G"])) == 5  # real, distinct numbers were compared
    assert one["rho"][-1] == (1.0).hex()  # rho*(m = B) is the tie 1, never 0
