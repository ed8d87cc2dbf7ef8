"""Forward passes of models imported through the graph runtime, against the same networks in PyTorch.

Usage::

    python bench/imported.py [--quick] [--out bench/results/imported.json]

Each network is built in PyTorch with random weights (BatchNorm statistics redrawn, so no layer is trivial),
then imported the way a user imports it, and both sides run the same float32 inputs, side by side in this one
process at the same thread count:

- ``resnet18``: torchvision's ResNet-18 topology (``tests/torch_nets.py``, 11.7 M weights) exported by
  ``torch.onnx.export``, 224 x 224 RGB;
- ``mobilenet``: the MobileNet-style network of ``tests/torch_nets.py`` (depthwise convolutions,
  hard-swish, squeeze-excite gate) through ONNX, 96 x 96;
- ``bert``: a ``transformers`` ``BertModel`` (BERT-base shape: 12 layers, width 768, 110 M weights) saved
  with ``save_pretrained`` as a Hugging Face folder, 64 tokens per sequence; the PyTorch side returns
  ``last_hidden_state``, wkbnoise ``model.encode``. Skipped when ``transformers`` is absent.

Rows: images (or sequences) per second at a batch and at batch 1, median of the timed calls (three rounds
in which the two sides take turns, block by block), the ratio
wkbnoise / PyTorch, and the largest relative difference of the outputs (a check that both sides computed
the same function). Results go to ``bench/results/imported.json``.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (str(ROOT), str(BENCH), str(ROOT / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import torch_nets as tn  # noqa: E402


def _onnx(module, shape, path: Path) -> Path:
    module.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(1, *shape),), buf, dynamo=False, opset_version=17,
                          input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    path.write_bytes(buf.getvalue())
    return path


def _bert(folder: Path):
    import transformers

    torch.manual_seed(0)
    net = transformers.BertModel(transformers.BertConfig(), add_pooling_layer=False).eval()
    net.save_pretrained(folder)
    return net


def _rates(fns: dict, n_items: int, calls: int, rounds: int = 3) -> dict:
    """Items/s of each function from the median of its ``rounds`` x ``calls`` timed calls; the functions
    take turns block by block (``calls`` each per round), so that drift on a shared machine hits every
    side alike."""
    times: dict = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm
    for _ in range(rounds):
        for k, fn in fns.items():
            fn()  # the other side's threads may still be spinning: one untimed call
            for _ in range(calls):
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    return {k: n_items / float(np.median(v)) for k, v in times.items()}


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def cases(quick: bool):
    """(name, build(tmp) -> (torch module, wkbnoise path), input maker, batch, calls)."""
    out = [
        ("resnet18", lambda tmp: (tn.randomize_bn(tn.ResNet(64, 1000)).eval(), None), (3, 224, 224),
         4 if quick else 16, 2 if quick else 3),
        ("mobilenet", lambda tmp: (tn.randomize_bn(tn.MobileNet(classes=1000)).eval(), None), (3, 96, 96),
         16 if quick else 64, 2 if quick else 3),
    ]
    try:
        import transformers  # noqa: F401

        out.append(("bert", "hf", (64,), 4 if quick else 16, 2 if quick else 3))
    except ImportError:
        pass
    return out


def run(quick: bool = False) -> list[dict]:
    from wkbnoise.runtime import load_model

    rows = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, build, shape, batch, calls in cases(quick):
            torch.manual_seed(0)
            if build == "hf":
                folder = tmp / name
                net = _bert(folder)
                model = load_model(folder)
                ids = rng.integers(1000, 20000, size=(batch, shape[0]))
                mask = np.ones_like(ids)
                tids, tmask = torch.from_numpy(ids), torch.from_numpy(mask)

                def wk(n, ids=ids, mask=mask, model=model):
                    return model.encode(ids[:n], mask[:n])[0]

                def pt(n, net=net, tids=tids, tmask=tmask):
                    with torch.no_grad():
                        return net(input_ids=tids[:n], attention_mask=tmask[:n]).last_hidden_state.numpy()
                unit = "sequences/s"
            else:
                net, _ = build(tmp)
                model = load_model(_onnx(net, shape, tmp / f"{name}.onnx"))
                x = rng.standard_normal((batch, *shape)).astype(np.float32)
                tx = torch.from_numpy(x)

                def wk(n, x=x, model=model):
                    return model.forward(x[:n])

                def pt(n, net=net, tx=tx):
                    with torch.no_grad():
                        return net(tx[:n]).numpy()
                unit = "images/s"
            err = _rel(wk(2), pt(2))
            for n, c in ((batch, calls), (1, 5 * calls)):
                r = _rates({"pytorch": lambda n=n: pt(n), "wkbnoise": lambda n=n: wk(n)}, n, c)
                r_pt, r_wk = r["pytorch"], r["wkbnoise"]
                label = f"forward {name} (batch {n})"
                rows.append({"part": 2, "name": label, "implementation": "pytorch", "unit": unit,
                             "median": r_pt, "ratio": None})
                rows.append({"part": 2, "name": label, "implementation": "wkbnoise", "unit": unit,
                             "median": r_wk, "ratio": r_wk / r_pt, "baseline": "pytorch",
                             "max_rel_diff": err})
    return rows


def main(quick: bool = False, out: str | None = None) -> int:
    """Print the rows and write them to ``out`` (default ``bench/results/imported.json``)."""
    from run import _blas_info

    rows = run(bool(quick))
    path = Path(out) if out else BENCH / "results" / "imported.json"
    blas = _blas_info()  # the kernel in use, and whether the OpenBLAS variables were set
    path.write_text(json.dumps({"rows": rows, "torch_threads": torch.get_num_threads(), "blas": blas}, indent=1))
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x  (max rel diff {r['max_rel_diff']:.1e})"
        print(f"{r['name']:<32} {r['implementation']:<9} {r['median']:>10.1f} {r['unit']:<12} {ratio}")
    print(f"BLAS: {blas}; torch threads {torch.get_num_threads()}")
    return 0


if __name__ == "__main__":
    import fire

    fire.Fire(main)
