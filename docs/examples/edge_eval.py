"""An edge-evaluation script: oxide -> flip rates -> protection plan -> Monte Carlo accuracy.

Run it with ``python docs/examples/edge_eval.py`` (about half a minute on two cores). Swap
``zoo.load("lenet5")`` for ``load_model("your_model.safetensors")`` to study your own network: an MNIST-shaped
classifier runs on the bundled test images, an encoder loaded from a Hugging Face folder's
``model.safetensors`` on the bundled English sentences through the folder's own tokenizer (its metric is
then the cosine similarity of its pooled embedding to the clean INT8 model's, not accuracy).
"""

import json

from wkbnoise import zoo
from wkbnoise.allocation import plan_cost, plan_for, plan_to_json
from wkbnoise.evaluation.campaign import Evaluator
from wkbnoise.evaluation.sources import default_inputs
from wkbnoise.physics import memory_flip_rates
from wkbnoise.runtime import load_model  # noqa: F401  (for your own weight file)
from wkbnoise.sensitivity import layer_sensitivities

model = zoo.load("lenet5")
inputs, labels, calib = default_inputs(model, n=500)  # test images, labels, unlabeled calibration images
rates = memory_flip_rates("SiO2", thickness_nm=4.6, years=10, cell="flash")  # charge loss: 1 -> 0 dominates
print(f"per-bit rates after 10 years: p(1->0) = {rates.p_down[0]:.3g}, p(0->1) = {rates.p_up[0]:.3g}")

ev = Evaluator(model, inputs, labels)  # INT8 per tensor, two's complement
G = layer_sensitivities(model, calib, base_weights=ev.int8_weights, seed=0).as_dict()
stats = ev.layer_stats(rates, G)

print(f"clean INT8 {ev.metric}: {ev.int8_score:.3f}")
for method, budget in [("none", 0.0), ("correct-only", 0.0), ("uniform-msp", 1.0), ("tac", 1.0)]:
    plan = plan_for(method, stats, budget, seed=0)
    acc = ev.run(rates, method=method, plan=plan, trials=10, seed=0).accuracy
    bits = plan_cost(stats, plan) / sum(s.n_weights for s in stats)
    print(f"{method:>12} at {bits:.2f} protected bits/weight: {ev.metric} {acc.mean():.3f} (min {acc.min():.3f})")

doc = json.loads(plan_to_json(stats, plan_for("tac", stats, 1.0, seed=0), code="secded-72-64", method="tac",
                              bits_per_weight=1.0))  # the plan a hardware engineer takes away
print("TAC plan, protected top planes per layer:", {x["name"]: len(x["protected_planes"]) for x in doc["layers"]})
print(f"SECDED(72,64) check bits: {doc['check_bits']} ({doc['check_bits_per_weight']:.3f} per weight)")
