"""A model as a graph: nodes over named values, its JSON form, its checks and the walk that runs it.

A :class:`Graph` is a list of :class:`Node` (an operator of :mod:`wkbnoise.runtime.ops`, the names of its
input and output values, its attributes) over named values: the graph inputs (``images``, or
``input_ids`` / ``attention_mask`` / ``token_type_ids``), the initializers (weight tensors, by their name in
the weight file) and the node outputs. ``quantized`` names the initializers that sit in the faulty memory.
The JSON form travels in the safetensors ``__metadata__`` key ``"wkbnoise.graph"`` beside the weights::

    {"format": "wkbnoise.graph/1", "task": "classifier",
     "inputs": [{"name": "images", "dtype": "float32", "shape": [null, 1, 28, 28]}],
     "outputs": ["logits"],
     "nodes": [{"op": "Conv", "name": "conv1", "inputs": ["images", "conv1.weight", "conv1.bias"],
                "outputs": ["conv1_out"], "attrs": {"strides": [1, 1], "pads": [2, 2, 2, 2]}}, ...],
     "quantized": ["conv1.weight", ...],
     "preprocess": {"kind": "image", "layout": "NCHW", "scale": 0.00392156862745098,
                    "mean": [0.1307], "std": [0.3081]}}

:func:`run` walks the nodes in order. Image activations stay channel-major, (C, N, H, W), from one
convolution to the next through the operators that accept that layout (``ops.CNHW_OPS``); an operator that
reads NCHW gets a transposed copy. An operator may write its result into an input that nothing reads
afterwards (activations in place), which the walk works out once per graph (:attr:`Graph.plan`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..errors import InputError, ModelFileError
from . import ops
from .ops import CNHW_OPS, FRESH_OPS, OPS, Context

__all__ = ["FORMAT", "Node", "Graph", "Checkpoint", "run", "run_keeping", "first_reads"]

FORMAT = "wkbnoise.graph/1"
TASKS = ("classifier", "encoder")


@dataclass(frozen=True)
class Node:
    """One operator application.

    Attributes
    ----------
    op : str
        Operator name (ONNX, or ``wkbnoise.*``; see :mod:`wkbnoise.runtime.ops`).
    name : str
        Unique node name (used in messages and as the key of cached work).
    inputs : tuple of str
        Value names read, in the operator's order; ``""`` for an absent optional input.
    outputs : tuple of str
        Value names written.
    attrs : dict
        Attributes (ONNX names).
    """

    op: str
    name: str
    inputs: tuple
    outputs: tuple
    attrs: dict = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict:
        return {"op": self.op, "name": self.name, "inputs": list(self.inputs), "outputs": list(self.outputs),
                "attrs": self.attrs}


@dataclass(frozen=True)
class _Step:
    node: Node
    fn: object
    owned: tuple
    fed: tuple
    free: tuple


def _where(path) -> str:
    return f" in path={str(path)!r}" if path is not None else ""


@dataclass(frozen=True, eq=False)
class Graph:
    """A model graph (see the module docstring for its JSON form).

    Attributes
    ----------
    nodes : tuple of Node
        In an order where every value is written before it is read.
    inputs : tuple of dict
        ``{"name", "dtype", "shape"}`` per graph input; ``None`` in ``shape`` for a free size (the batch).
    outputs : tuple of str
        Values returned by :func:`run`.
    quantized : tuple of str
        Initializers stored in the faulty memory.
    task : str
        ``"classifier"`` or ``"encoder"``.
    preprocess : dict or None
        How raw inputs become the graph input: ``{"kind": "image", "layout", "scale", "mean", "std"}``
        (``x = (pixels * scale - mean) / std`` per channel); ``None`` for token inputs.
    """

    nodes: tuple
    inputs: tuple
    outputs: tuple
    quantized: tuple = ()
    task: str = "classifier"
    preprocess: dict | None = None

    # -- JSON ---------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "task": self.task, "inputs": [dict(i) for i in self.inputs],
                "outputs": list(self.outputs), "nodes": [n.to_dict() for n in self.nodes],
                "quantized": list(self.quantized), "preprocess": self.preprocess}

    def to_json(self) -> str:
        """The compact JSON text stored under ``"wkbnoise.graph"``."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text, path=None) -> Graph:
        """Parse the JSON form (a str or an already parsed dict) and check its structure.

        Raises
        ------
        ModelFileError
            One line naming the defect (and the node and op where there is one) and ``path``.
        """
        where = _where(path)
        if isinstance(text, str | bytes):
            try:
                d = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ModelFileError(f"the wkbnoise.graph metadata{where} is not JSON ({exc}).") from None
        else:
            d = text
        if not isinstance(d, dict):
            raise ModelFileError(f"the wkbnoise.graph metadata{where} is not a JSON object.")
        if d.get("format") != FORMAT:
            raise ModelFileError(f"the wkbnoise.graph metadata{where} has format={d.get('format')!r}; this "
                                 f"runtime reads {FORMAT!r}.")
        for key, kind in (("inputs", list), ("outputs", list), ("nodes", list)):
            if not isinstance(d.get(key), kind):
                raise ModelFileError(f"the wkbnoise.graph metadata{where} lacks the list {key!r}.")
        nodes = []
        for i, nd in enumerate(d["nodes"]):
            if not isinstance(nd, dict) or not isinstance(nd.get("op"), str) \
                    or not all(isinstance(nd.get(k), list) and all(isinstance(v, str) for v in nd[k])
                               for k in ("inputs", "outputs")) \
                    or not isinstance(nd.get("attrs", {}), dict):
                raise ModelFileError(f"node #{i} of the graph{where} is malformed: it needs 'op' (str), 'inputs' "
                                     f"and 'outputs' (lists of str) and 'attrs' (object).")
            nodes.append(Node(nd["op"], str(nd.get("name") or f"{nd['op']}_{i}"), tuple(nd["inputs"]),
                              tuple(nd["outputs"]), dict(nd.get("attrs", {}))))
        inputs = []
        for spec in d["inputs"]:
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
                    or not isinstance(spec.get("shape"), list):
                raise ModelFileError(f"a graph input{where} is malformed ({spec!r}); give "
                                     f'{{"name": ..., "dtype": ..., "shape": [null, ...]}}.')
            inputs.append({"name": spec["name"], "dtype": str(spec.get("dtype", "float32")),
                           "shape": list(spec["shape"])})
        task = d.get("task", "classifier")
        if task not in TASKS:
            raise ModelFileError(f"the graph{where} has task={task!r}; it must be one of {', '.join(TASKS)}.")
        pre = d.get("preprocess")
        if pre is not None and (not isinstance(pre, dict) or pre.get("kind") != "image"):
            raise ModelFileError(f"the graph{where} has preprocess={pre!r}; give null or "
                                 f'{{"kind": "image", "layout": "NCHW", "scale": ..., "mean": [...], "std": [...]}}.')
        graph = cls(tuple(nodes), tuple(inputs), tuple(str(o) for o in d["outputs"]),
                    tuple(str(q) for q in d.get("quantized", [])), task, pre)
        graph.check_structure(path)
        return graph

    # -- checks -------------------------------------------------------------------------------------------
    def check_structure(self, path=None) -> None:
        """Known ops with valid attributes, unique value names, outputs that exist, no cycle."""
        where = _where(path)
        produced = {}
        for spec in self.inputs:
            produced[spec["name"]] = None
        names = set()
        for node in self.nodes:
            tag = f"node {node.name!r} (op {node.op!r}){where}"
            if node.name in names:
                raise ModelFileError(f"{tag}: the node name is used twice; node names must be unique.")
            names.add(node.name)
            if node.op not in OPS:
                raise ModelFileError(f"{tag}: op {node.op} is not supported by the runtime; supported: "
                                     f"{', '.join(ops.op_names())}.")
            why = ops.check_node(node.op, node.attrs, len(node.inputs), len(node.outputs))
            if why is not None:
                raise ModelFileError(f"{tag}: {why}.")
            for out in node.outputs:
                if not out or out in produced:
                    raise ModelFileError(f"{tag}: value {out!r} is written twice (or is a graph input); every "
                                         f"value is written once.")
                produced[out] = node
        for out in self.outputs:
            if out not in produced:
                raise ModelFileError(f"the graph{where} returns {out!r}, which no node writes and is not an input.")
        self._order(path)

    def _order(self, path=None) -> tuple:
        """The nodes in an order where each value is written before it is read (Kahn's algorithm)."""
        writer = {out: i for i, n in enumerate(self.nodes) for out in n.outputs}
        deps = [{writer[v] for v in n.inputs if v in writer} for n in self.nodes]
        if all(all(j < i for j in d) for i, d in enumerate(deps)):
            return self.nodes
        users = [[] for _ in self.nodes]
        for i, d in enumerate(deps):
            for j in d:
                users[j].append(i)
        count = [len(d) for d in deps]
        ready = [i for i, c in enumerate(count) if c == 0]
        order = []
        while ready:
            i = ready.pop(0)
            order.append(i)
            for u in users[i]:
                count[u] -= 1
                if count[u] == 0:
                    ready.append(u)
        if len(order) < len(self.nodes):
            stuck = next(self.nodes[i] for i, c in enumerate(count) if c > 0)
            raise ModelFileError(f"node {stuck.name!r} (op {stuck.op!r}){_where(path)}: the graph has a cycle "
                                 f"through this node; a model graph must be acyclic.")
        return tuple(self.nodes[i] for i in order)

    def validate(self, params, path=None) -> None:
        """Check every value a node reads against the graph inputs, node outputs and ``params``.

        Raises
        ------
        ModelFileError
            A dangling value name, a missing initializer, or a quantized name that is not an initializer.
        """
        where = _where(path)
        known = {spec["name"] for spec in self.inputs} | {o for n in self.nodes for o in n.outputs}
        for node in self.nodes:
            for v in node.inputs:
                if v and v not in known and v not in params:
                    raise ModelFileError(f"node {node.name!r} (op {node.op!r}){where}: input {v!r} is neither a "
                                         f"graph input, a node output nor a tensor of the file (missing "
                                         f"initializer or dangling value name).")
        for q in self.quantized:
            if q not in params:
                raise ModelFileError(f"the graph{where} stores {q!r} in the faulty memory, but the file has no "
                                     f"tensor of that name.")

    # -- the walk ----------------------------------------------------------------------------------------
    @cached_property
    def plan(self) -> tuple:
        """Per node: its function, which inputs it may overwrite, which values die after it."""
        nodes = self._order()
        pinned_outputs = set(self.outputs)
        last = {}
        for i, n in enumerate(nodes):
            for v in n.inputs:
                if v:
                    last[v] = i
        for v in pinned_outputs:
            last[v] = len(nodes)
        produced = {o for n in nodes for o in n.outputs}
        fed = {spec["name"] for spec in self.inputs}
        # the buffers ("roots") a value may share: its own, or those of the input it was a view of or was
        # written into; an input may be overwritten once every value defined so far on its roots is dead
        roots: dict[str, frozenset] = {}
        root_last: dict[str, int] = {}

        def roots_of(v):  # graph inputs and initializers are their own roots, never writable
            return roots.get(v, frozenset({v}))

        steps = []
        for i, n in enumerate(nodes):
            owned = []
            for j, v in enumerate(n.inputs):
                others = frozenset().union(*(roots_of(u) for k, u in enumerate(n.inputs) if k != j and u))
                owned.append(bool(v) and v in produced and not (roots_of(v) & others)
                             and all(r in produced and root_last.get(r, -1) <= i for r in roots_of(v)))
            ins = [v for v in n.inputs if v]
            for out in n.outputs:
                if n.op in FRESH_OPS:
                    roots[out] = frozenset({out}) | (roots_of(n.inputs[0]) if owned and owned[0] else frozenset())
                else:
                    roots[out] = frozenset({out}).union(*(roots_of(v) for v in ins))
                for r in roots[out]:
                    root_last[r] = max(root_last.get(r, -1), last.get(out, -1))
            free = tuple(v for v in dict.fromkeys(n.inputs) if v and last.get(v) == i and v in produced)
            steps.append(_Step(n, OPS[n.op], tuple(owned), tuple(v in fed for v in n.inputs), free))
        return tuple(steps)


def _cn_view(a):
    """An array of at most 4 axes, broadcast as NCHW, as its channel-major counterpart (a view)."""
    if a.ndim < 4:
        a = a.reshape((1,) * (4 - a.ndim) + a.shape)
    return a.transpose(1, 0, 2, 3)


def _nchw(a):
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3))


@dataclass(frozen=True)
class Checkpoint:
    """The values of one graph call that are still to be read just before plan step ``step``.

    Attributes
    ----------
    step : int
        Index in :attr:`Graph.plan` of the first step still to run.
    values : dict of str to ndarray
        Private copies of the node outputs live before that step, memory layout kept (never written: each
        resumed call copies them again). The checkpoints of one call share the copy of a value they both
        hold. The graph inputs are not kept: a resumed call is fed them again.
    cn : frozenset of str
        The values among them held channel-major (C, N, H, W).
    """

    step: int
    values: dict
    cn: frozenset

    @property
    def nbytes(self) -> int:
        """Memory held [bytes] (arrays shared with other checkpoints included)."""
        return sum(a.nbytes for a in self.values.values())


def first_reads(graph: Graph, names) -> dict:
    """Per initializer of ``names``: the index of the first plan step that reads it (absent: never read)."""
    want, out = set(names), {}
    for i, step in enumerate(graph.plan):
        for v in step.node.inputs:
            if v in want and v not in out:
                out[v] = i
    return out


def run(graph: Graph, params, feeds, weights=None, ctx: Context | None = None, *,
        resume: Checkpoint | None = None) -> dict:
    """Run ``graph`` on ``feeds``.

    Parameters
    ----------
    graph : Graph
        The model graph.
    params : dict of str to ndarray
        Initializers by name (read, never written).
    feeds : dict of str to ndarray
        One array per graph input (with ``resume``: those of the call that kept it).
    weights : dict of str to ndarray, optional
        Replacement initializers for this call (read, never written or copied).
    ctx : Context, optional
        Cached input-only work and reusable buffers (a fresh one when omitted).
    resume : Checkpoint, optional
        Start at ``resume.step`` from the values kept there (:func:`run_keeping`) instead of at the first
        step: the same outputs as a whole call, provided no step before it reads a replaced initializer
        with other values than the call that kept it (the caller's duty; :meth:`Model.checkpoints` checks).

    Returns
    -------
    dict of str to ndarray
        The graph outputs, by name, in ``graph.outputs`` order (NCHW for images).
    """
    return _walk(graph, params, feeds, weights, ctx, resume, ())[0]


def run_keeping(graph: Graph, params, feeds, steps, weights=None,
                ctx: Context | None = None) -> tuple[dict, dict]:
    """:func:`run`, keeping a :class:`Checkpoint` just before each plan step of ``steps``.

    Returns
    -------
    (dict, dict)
        The graph outputs by name, and the checkpoints by step.
    """
    return _walk(graph, params, feeds, weights, ctx, None, frozenset(int(k) for k in steps))


def _walk(graph, params, feeds, weights, ctx, resume, keep) -> tuple[dict, dict]:
    ctx = Context() if ctx is None else ctx
    env = dict(params)
    if weights:
        env.update(weights)
    env.update(feeds)
    start = 0
    cn: set = set()       # values held channel-major
    if resume is not None:
        # private copies (memory layout kept): the steps ahead may write into the arrays they read last
        env.update({v: a.copy(order="K") for v, a in resume.values.items()})
        cn, start = set(resume.cn), resume.step
    other: dict = {}      # value -> its array in the other layout, made once per call
    kept = {}
    copies: dict = {}  # one copy per value per call: a live value is never written, so checkpoints share it
    plan = graph.plan
    for i in range(start, len(plan)):
        step = plan[i]
        if i in keep:
            for v, a in env.items():
                if v not in copies and v not in params and v not in feeds and not (weights and v in weights):
                    copies[v] = a.copy(order="K")
            live = {v: copies[v] for v in env if v in copies}
            kept[i] = Checkpoint(i, live, frozenset(cn & set(live)))
        node = step.node
        arrs = [env[v] if v else None for v in node.inputs]
        entry = CNHW_OPS.get(node.op)
        use_cn = False
        if entry is not None:
            fn_cn, acts, switch = entry
            idx = [j for j in (range(len(arrs)) if acts is None else acts) if j < len(arrs) and arrs[j] is not None]
            if all(arrs[j].ndim <= 4 for j in idx):
                use_cn = any(node.inputs[j] in cn for j in idx) or (switch and arrs[0].ndim == 4)
        if use_cn:
            fn = fn_cn
            for j in idx:
                v = node.inputs[j]
                if v in cn:
                    continue
                if arrs[j].ndim == 4:
                    if v not in other:
                        other[v] = _nchw(arrs[j])
                    arrs[j] = other[v]
                else:
                    arrs[j] = _cn_view(arrs[j])
        else:
            fn = step.fn
            for j, v in enumerate(node.inputs):
                if v in cn:
                    if v not in other:
                        other[v] = _nchw(arrs[j])
                    arrs[j] = other[v]
        ctx.node, ctx.owned, ctx.fed = node, step.owned, step.fed
        try:
            outs = fn(arrs, node.attrs, ctx)
        except InputError as exc:
            raise InputError(f"node {node.name!r} (op {node.op!r}): {exc}") from None
        except (ValueError, IndexError) as exc:
            shapes = ", ".join("-" if a is None else "x".join(map(str, a.shape)) for a in arrs)
            raise InputError(f"node {node.name!r} (op {node.op!r}) cannot run on inputs of shapes {shapes}: "
                             f"{exc}".replace("\n", " ")) from None
        for out, arr in zip(node.outputs, outs, strict=True):
            env[out] = arr
            if use_cn and arr.ndim == 4:
                cn.add(out)
        for v in step.free:
            env.pop(v, None)
            other.pop(v, None)
            cn.discard(v)
    result = {}
    for v in graph.outputs:
        a = env[v]
        if v in cn:
            a = other[v] if v in other else _nchw(a)
        result[v] = a
    return result, kept
