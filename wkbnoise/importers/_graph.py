"""Steps every importer shares: BatchNorm folding, dead-node pruning, the hand-over to the runtime's Graph."""

from __future__ import annotations

import numpy as np

__all__ = ["fold_batchnorm", "prune", "build_graph", "unique_name"]


def unique_name(base: str, taken) -> str:
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def fold_batchnorm(nodes: list[dict], params: dict, outputs) -> tuple[list[dict], dict]:
    """Fold each ``BatchNormalization`` on a ``Conv`` or ``Gemm{transB: 1}`` output that nothing else reads.

    ``W' = W s`` and ``b' = (b - mean) s + beta`` per output channel, ``s = gamma / sqrt(var + eps)``,
    computed in float64 and stored as float32. The folded layer takes the BatchNorm's output name; a weight
    that another node also reads is copied under a new name first.
    """
    nodes = [dict(n) for n in nodes]
    params = dict(params)
    producer = {o: n for n in nodes for o in n["outputs"]}
    readers: dict[str, int] = {}
    for n in nodes:
        for x in n["inputs"]:
            readers[x] = readers.get(x, 0) + 1
    removed = set()
    for bn in nodes:
        if bn["op"] != "BatchNormalization":
            continue
        p = producer.get(bn["inputs"][0])
        if (
            p is None
            or p["op"] not in ("Conv", "Gemm")
            or readers.get(bn["inputs"][0], 0) != 1
            or bn["inputs"][0] in outputs
            or p["inputs"][1] not in params
            or not all(x in params for x in bn["inputs"][1:5])
        ):
            continue
        if p["op"] == "Gemm" and (
            p["attrs"].get("transB") != 1
            or p["attrs"].get("alpha", 1.0) != 1.0
            or p["attrs"].get("beta", 1.0) != 1.0
            or p["attrs"].get("transA", 0)
        ):
            continue
        gamma, beta, mean, var = (np.asarray(params[x], np.float64) for x in bn["inputs"][1:5])
        s = gamma / np.sqrt(var + float(bn["attrs"].get("epsilon", 1e-5)))
        w_name = p["inputs"][1]
        w = np.asarray(params[w_name], np.float64)
        b_name = p["inputs"][2] if len(p["inputs"]) > 2 and p["inputs"][2] else ""
        b = np.asarray(params[b_name], np.float64) if b_name else np.zeros(w.shape[0])
        if readers.get(w_name, 0) > 1:
            w_name = unique_name(f"{w_name}.bn_folded", params)
        if not b_name or readers.get(b_name, 0) > 1:
            base = w_name[: -len(".weight")] if w_name.endswith(".weight") else w_name
            b_name = unique_name(f"{base}.bias", params)
        params[w_name] = (w * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        params[b_name] = ((b - mean) * s + beta).astype(np.float32)
        p["inputs"] = [p["inputs"][0], w_name, b_name]
        p["outputs"] = list(bn["outputs"])
        removed.add(bn["name"])
    return [n for n in nodes if n["name"] not in removed], params


def prune(nodes: list[dict], params: dict, outputs) -> tuple[list[dict], dict]:
    """Drop the nodes no output depends on and the parameters no kept node reads."""
    needed = set(outputs)
    kept = []
    for n in reversed(nodes):
        if any(o in needed for o in n["outputs"]):
            kept.append(n)
            needed.update(x for x in n["inputs"] if x)
    kept.reverse()
    return kept, {k: v for k, v in params.items() if k in needed}


def build_graph(spec: dict, params: dict, source: str):
    """The runtime's :class:`~wkbnoise.runtime.graph.Graph` of ``spec``, validated (ops, names, weights)."""
    from ..runtime.graph import Graph

    graph = Graph.from_json(spec, path=source)
    graph.validate(params, path=source)
    return graph, params
