"""Layer sensitivities ``G_l``: perturbed passes that start at the perturbed layer, against whole passes.

``python bench/sensitivities.py [--models lenet5,bert-base] [--out bench/results/sensitivities.json]``
(run it with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset in its command). Per zoo model, on its
256 calibration images (``bert-base``: a ``transformers`` ``BertModel`` of BERT-base shape with random
weights, saved as a Hugging Face folder, on 32 random sequences of 8-24 tokens, two draws per layer; needs
``transformers``), :func:`wkbnoise.sensitivity.layer_sensitivities` runs twice per round, the two ways
taking turns over ``rounds`` rounds: with the model's checkpoints (the default: each perturbed pass
starts where its layer is first read) and with none kept (every pass starts at the input, as before the
checkpoints). Rows: the median seconds of each way, their ratio (whole / checkpoints, > 1: the checkpoints
are faster), and whether ``G`` and the linearity ratios are the same bit for bit.
"""

from __future__ import annotations

import json as _json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODELS = ("lenet5", "vgg", "resnet20", "mobilenetv2", "vit")


def _blas() -> str:
    import threadpoolctl

    info = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    kernels = ", ".join(f"{i['internal_api']} {i.get('version')} kernel {i.get('architecture', '?')}" for i in info)
    return kernels + (f" (environment: {env})" if env else " (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset)")


def run(models=MODELS, rounds: int = 2) -> dict:
    """Rows per model: seconds with and without checkpoints, their ratio, and the same-G check."""
    from wkbnoise import zoo
    from wkbnoise.runtime import base
    from wkbnoise.sensitivity import layer_sensitivities

    default_bytes = base.CHECKPOINT_BYTES
    rows = []
    for name in models:
        draws = 4
        if name == "bert-base":
            model, x = _bert_base()
            draws = 2
        else:
            model = zoo.load(name)
            x = model.preprocess(zoo.calibration_images())
        times = {"checkpoints": [], "whole": []}
        results = {}
        for r in range(int(rounds)):
            for way in (("checkpoints", "whole") if r % 2 == 0 else ("whole", "checkpoints")):
                base.CHECKPOINT_BYTES = default_bytes if way == "checkpoints" else 0  # 0: nothing kept
                try:
                    t0 = time.perf_counter()
                    results[way] = layer_sensitivities(model, x, draws=draws)
                    times[way].append(time.perf_counter() - t0)
                finally:
                    base.CHECKPOINT_BYTES = default_bytes
        if name == "bert-base":
            from wkbnoise.text import TokenCheckpoints

            chunks = TokenCheckpoints(model, x).chunks
            kept_layers = len(set().union(*(cp.kept for cp in chunks)))
            kept_mib = sum(cp.nbytes for cp in chunks) / 2**20
        else:
            kept = model.checkpoints(x, batch_size=256)
            kept_layers, kept_mib = len(kept.kept), kept.nbytes / 2**20
        same = bool(np.array_equal(results["checkpoints"].G, results["whole"].G)
                    and np.array_equal(results["checkpoints"].linearity, results["whole"].linearity))
        t_c, t_w = statistics.median(times["checkpoints"]), statistics.median(times["whole"])
        rows.append({"model": name, "inputs": len(x), "draws": draws, "layers": len(model.layers),
                     "kept_layers": kept_layers, "kept_mib": kept_mib, "checkpoints_s": t_c, "whole_s": t_w,
                     "ratio": t_w / t_c, "same_G": same, "times": times})
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"rows": rows, "blas": _blas(), "cpus": os.cpu_count(), "git_commit": commit}


def _bert_base():
    """A BERT-base-shaped ``BertModel``, random weights, as a Hugging Face folder; 32 random sequences."""
    import tempfile

    import torch
    import transformers

    from wkbnoise.runtime import load_model
    from wkbnoise.text import token_batch

    folder = Path(tempfile.mkdtemp()) / "bert-base"
    torch.manual_seed(0)
    transformers.BertModel(transformers.BertConfig(), add_pooling_layer=False).eval().save_pretrained(folder)
    model = load_model(folder)
    rng = np.random.default_rng(0)
    lengths = rng.integers(8, 25, 32)
    mask = (np.arange(24)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1000, 30000, (32, 24)) * mask
    return model, token_batch({"input_ids": ids, "attention_mask": mask}, model)


def main(models: str = ",".join(MODELS), rounds: int = 2, out: str | None = None, json: bool = False) -> None:
    """Print a table (or with ``--json`` one JSON object); ``--out`` also writes the JSON there."""
    names = [m for m in (models.split(",") if isinstance(models, str) else models) if m]
    result = run(names, int(rounds))
    if out:
        Path(out).write_text(_json.dumps(result, indent=1))
    if json:
        print(_json.dumps(result))
        return
    print(f"BLAS {result['blas']}; {result['cpus']} CPUs; commit {result['git_commit']}")
    print(f"{'model':<12} {'kept':>9} {'MiB':>7} {'checkpoints s':>14} {'whole s':>8} {'ratio':>6} {'same G':>7}")
    for r in result["rows"]:
        print(f"{r['model']:<12} {r['kept_layers']:>4}/{r['layers']:<4} {r['kept_mib']:>7.1f} "
              f"{r['checkpoints_s']:>14.2f} {r['whole_s']:>8.2f} {r['ratio']:>5.2f}x {str(r['same_G']):>7}")


if __name__ == "__main__":
    import fire

    fire.Fire(main)
