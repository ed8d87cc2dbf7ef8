"""Every user mistake: exit 2, exactly one line on stderr, no traceback, nothing on stdout, nothing written.

Property-based (hypothesis) over four families of bad input, all through ``wkbnoise.__main__.main`` in
process (a few real subprocesses at the end):

- the command line of every command (unknown flags, stray arguments, missing or twice-given flags, values
  out of range, output paths that cannot be written, resource requests beyond the bounds);
- the safetensors header of a weight file (offsets, shapes, dtypes, coverage, non-finite weights, configs);
- the resume journal of a run file (fields, base64, shapes, dtypes, records that lack what the run reads);
- the library's own entry points (``load_model``, ``plan_for``, ``Evaluator``, the allocation helpers).

Each family records the distinct inputs it tried; ``test_zz_counts`` checks there were at least 100 and
writes the counts to ``$WKBNOISE_MISTAKE_COUNTS`` when that variable names a file.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wkbnoise import zoo
from wkbnoise.__main__ import main
from wkbnoise.cli import Cli
from wkbnoise.cli._parse import _positionals, commands

TRIED: dict[str, set] = defaultdict(set)
FAMILIES = ("cli", "header", "journal", "library")
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CMDS = commands(Cli)


def _listing(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def refused(capsys, argv, root: Path, *fragments, family="cli") -> str:
    """Run ``main(argv)`` in ``root`` and check the one-line refusal; returns the line."""
    TRIED[family].add(tuple(map(str, argv)))
    before = _listing(root)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        code = main([str(a) for a in argv])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (argv, code, out[-500:], err[-2000:])
    assert out == "", (argv, out[:500])
    assert len(lines) == 1, (argv, err)
    assert "Traceback" not in err and lines[0].startswith("wkbnoise: error: ")
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    assert _listing(root) == before, f"{argv} wrote into {root}"
    return lines[0]


@pytest.fixture
def box(tmp_path_factory):
    """An empty working folder per test (hypothesis reuses it across examples; every case leaves it as found)."""
    return tmp_path_factory.mktemp("box")


# -- the command line -----------------------------------------------------------------------------------------
def _known(cmd):
    fn = CMDS[cmd]
    import inspect

    names = [p for p in inspect.signature(fn).parameters if p != "self"]
    out = set()
    for n in names:
        out |= {n, n.replace("_", "-"), "no" + n, "no-" + n.replace("_", "-"), "no_" + n}
    return out


@SETTINGS
@given(cmd=st.sampled_from(sorted(CMDS)), flag=st.from_regex(r"[a-z][a-z0-9_-]{0,14}", fullmatch=True))
def test_unknown_flags_refused_before_work(capsys, box, cmd, flag):
    if flag in _known(cmd) or flag in ("help",):
        return
    line = refused(capsys, [cmd, f"--{flag}", "1"], box, "unknown flag", "--help")
    assert f"--{flag}" in line


@pytest.mark.parametrize("cmd, typo, right", [("eval", "--trails", "--trials"), ("physics", "--thicknes-nm", "--thickness-nm"),
                                              ("validate", "--sample", "--samples"), ("thickness-for", "--yeras", "--years"),
                                              ("info", "--warm-up", "--warmup"), ("reproduce", "--quik", "--quick")])
def test_misspelled_flag_suggests_the_right_one(capsys, box, cmd, typo, right):
    refused(capsys, [cmd, typo, "1"], box, typo, f"did you mean {right}?")


@SETTINGS
@given(cmd=st.sampled_from(sorted(CMDS)),
       extra=st.lists(st.from_regex(r"[A-Za-z0-9_.][A-Za-z0-9_./]{0,12}", fullmatch=True), min_size=1, max_size=3))
def test_stray_positional_arguments_refused(capsys, box, cmd, extra):
    takes_one = bool(_positionals(CMDS[cmd]))
    args = ["x.safetensors"] * len(_positionals(CMDS[cmd])) + extra
    line = refused(capsys, [cmd, *args], box, "unexpected argument")
    assert repr(extra[0] if not takes_one else extra[0]) in line or "argument" in line


@SETTINGS
@given(data=st.data())
def test_flag_without_value_or_twice(capsys, box, data):
    import inspect

    cmd = data.draw(st.sampled_from(sorted(CMDS)))
    params = [p for p in inspect.signature(CMDS[cmd]).parameters.values()
              if p.name != "self" and not isinstance(p.default, bool)]
    p = data.draw(st.sampled_from(params))
    flag = "--" + p.name.replace("_", "-")
    if data.draw(st.booleans()):
        refused(capsys, [cmd, flag], box, "needs a value")
    else:
        refused(capsys, [cmd, flag, "1", flag, "2"], box, "given twice")


def _num(lo=None, hi=None):
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False).map(repr)


_WORD = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,8}", fullmatch=True)
BAD_VALUES = {
    ("physics", "--thickness-nm"): st.one_of(_num(30.0001, 1e9), _num(-1e9, 0.2999), _WORD, st.just("nan")),
    ("physics", "--years"): st.one_of(_num(-1e9, 0.0), _WORD),
    ("physics", "--cell"): _WORD.filter(lambda w: w not in ("flash", "dram")),
    ("physics", "--eta-up"): st.one_of(_num(1.0001, 1e6), _num(-1e6, -1e-6)),
    ("physics", "--charged-bit"): st.one_of(st.integers(2, 10**6).map(str), st.integers(-10**6, -1).map(str)),
    ("physics", "--sigma-rel"): st.one_of(_num(0.5001, 1e6), _num(-1e6, -1e-9)),
    ("physics", "--material"): _WORD.filter(lambda w: w.lower() not in ("sio2", "si3n4", "hfo2")),
    ("thickness-for", "--p"): st.one_of(_num(1.0, 1e9), _num(-1e9, 0.0), _WORD),
    ("thickness-for", "--years"): st.one_of(_num(-1e9, 0.0), st.just("1e-30"), st.just("1e40")),
    ("thickness-for", "--model"): _WORD.filter(lambda w: w not in ("variability", "poisson", "counting")),
    ("validate", "--bits"): st.one_of(st.integers(17, 10**6).map(str), st.integers(-10**6, 1).map(str)),
    ("validate", "--samples"): st.one_of(st.integers(-10**6, 1023).map(str), st.integers(2**30 + 1, 10**15).map(str),
                                         st.just("1e12")),
    ("validate", "--protect"): st.integers(8, 10**6).map(str),
    ("validate", "--encoding"): _WORD.filter(lambda w: w not in ("twos", "signmag")),
    ("validate", "--p-flip"): st.one_of(_num(0.5, 1e6), _num(-1e6, -1e-9)),
    ("validate", "--seed"): st.integers(-10**9, -1).map(str),
    ("eval", "--p-flip"): st.one_of(_num(0.5, 1e6), _num(-1e6, -1e-9), _WORD),
    ("eval", "--trials"): st.one_of(st.integers(-10**6, 0).map(str), st.integers(100_001, 10**13).map(str),
                                    st.just("1e12"), st.just("2.5")),
    ("eval", "--images"): st.one_of(st.integers(-10**6, 0).map(str), st.integers(1001, 10**6).map(str)),
    ("eval", "--methods"): _WORD.filter(lambda w: w not in ("none", "tac", "magnitude", "random", "gaussian")),
    ("eval", "--budgets"): st.one_of(_num(8.0001, 1e6), _num(-1e6, -1e-9)),
    ("eval", "--metric"): _WORD.filter(lambda w: w not in ("accuracy", "agreement", "cosine")),
    ("eval", "--seed"): st.integers(-10**9, -1).map(str),
    ("eval", "--code"): _WORD.filter(lambda w: w != "ideal"),
    ("design", "--trials"): st.one_of(st.integers(-10**6, 1).map(str), st.integers(100_001, 10**13).map(str)),
    ("design", "--target"): st.one_of(_num(1.0001, 1e6), _num(-1e6, 0.0)),
    ("design", "--material"): _WORD.filter(lambda w: w not in ("SiO2", "Si3N4", "HfO2")),
    ("design", "--codes"): _WORD.filter(lambda w: w != "ideal"),
}


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_bad_flag_values_refused(capsys, box, data):
    cmd, flag = data.draw(st.sampled_from(sorted(BAD_VALUES)))
    value = data.draw(BAD_VALUES[(cmd, flag)])
    line = refused(capsys, [cmd, flag, value], box)
    assert flag in line or flag.lstrip("-").replace("-", "_") in line or "unreachable" in line, line


@pytest.fixture(scope="module")
def traps(tmp_path_factory):
    """A regular file (a folder that is not a folder) and a read-only folder."""
    root = tmp_path_factory.mktemp("traps")
    (root / "plain").write_text("x")
    return root


@pytest.mark.parametrize("argv, fragment", [
    (["eval", "--out", "{plain}/run.h5"], "is a file, not a folder"),
    (["eval", "--out", "{root}/missing/run.h5"], "does not exist"),
    (["eval", "--out", "{root}"], "is a directory"),
    (["eval", "--out", "/proc/x.h5"], "cannot be created"),
    (["eval", "--plan-json", "{plain}/plan.json"], "is a file, not a folder"),
    (["eval", "--plan-json", "/proc/plan.json"], "cannot be created"),
    (["reproduce", "--out", "{plain}/runs"], "is a file, not a folder"),
    (["reproduce", "--docs", "{plain}/docs"], "is a file, not a folder"),
    (["reproduce", "--out", "/proc/runs"], "cannot be created"),
    (["design", "--out", "{plain}/d.h5"], "is a file, not a folder"),
    (["design", "--png", "/proc/d.png"], "cannot be created"),
])
def test_unwritable_outputs_refused_before_work(capsys, box, traps, argv, fragment):
    argv = [a.format(plain=traps / "plain", root=traps) for a in argv]
    refused(capsys, argv, box, fragment)
    assert sorted(p.name for p in traps.iterdir()) == ["plain"]


@pytest.mark.parametrize("argv, fragments", [
    (["eval", "--trials", "1000000000000"], ("--trials", "100000")),
    (["eval", "--trials", "1e12"], ("--trials", "GiB")),
    (["validate", "--samples", "1000000000000"], ("--samples", "days")),
    (["validate", "--samples", "1e12"], ("--samples", "1073741824")),
    (["eval", "--images", "5000"], ("--images=5000", "1000")),
    (["info", "{lenet}", "{lenet}"], ("unexpected argument",)),
    (["eval", "{lenet}", "extra_arg"], ("unexpected argument 'extra_arg'",)),
    (["info", "--config", "x.json"], ("--config", "FILE")),
    (["evl"], ("did you mean eval?",)),
    (["thickness-for", "--years", "1e-30"], ("--years=1e-30", "longer --years")),
    (["physics", "-t", "4"], ("two hyphens",)),
    (["eval", "--json=maybe"], ("switch",)),
    (["reproduce", "--quick", "maybe"], ("switch --quick",)),
])
def test_named_cases_from_the_audit(capsys, box, argv, fragments):
    lenet = str(zoo.path("lenet5"))
    refused(capsys, [a.format(lenet=lenet) for a in argv], box, *fragments)


# -- --inputs and --labels ----------------------------------------------------------------------------------------
def _save(path, **tensors):
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))
    return str(path)


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    img = np.zeros((4, 1, 28, 28), np.uint8)
    nan = np.zeros((4, 1, 28, 28), np.float32)
    nan[2, 0, 3, 3] = np.nan
    f = {
        "good": _save(root / "good.safetensors", images=img),
        "empty": _save(root / "empty.safetensors", images=np.zeros((0, 1, 28, 28), np.uint8)),
        "nan": _save(root / "nan.safetensors", images=nan),
        "noimages": _save(root / "noimages.safetensors", pixels=img, y=np.zeros(4, np.int64)),
        "wrongshape": _save(root / "wrongshape.safetensors", images=np.zeros((4, 3, 32, 32), np.uint8)),
        "labels2d": _save(root / "labels2d.safetensors", labels=np.zeros((4, 1), np.int64)),
        "labels17": _save(root / "labels17.safetensors", labels=np.array([0, 1, 17, 2])),
        "labelsneg": _save(root / "labelsneg.safetensors", labels=np.array([0, -1, 1, 2])),
        "labelsfloat": _save(root / "labelsfloat.safetensors", labels=np.array([0.0, 1.5, 1.0, 2.0], np.float32)),
        "labelsshort": _save(root / "labelsshort.safetensors", labels=np.array([0, 1])),
        "nolabels": _save(root / "nolabels.safetensors", classes=np.array([0, 1, 1, 2])),
    }
    return f


@pytest.mark.parametrize("inputs, labels, extra, fragment", [
    ("empty", None, [], "0 inputs"),
    ("nan", None, [], "NaN"),
    ("noimages", None, [], "'pixels'"),
    ("wrongshape", None, [], "cannot take"),
    ("good", "labels2d", [], "1-D"),
    ("good", "labels17", [], "17"),
    ("good", "labelsneg", [], "negative"),
    ("good", "labelsfloat", [], "not an integer"),
    ("good", "labelsshort", [], "one label per image"),
    ("good", "nolabels", [], "'classes'"),
    ("good", None, ["--images", "5"], "--images=5"),
    ("good", None, ["--metric", "accuracy"], "--labels"),
])
def test_bad_inputs_and_labels_refused_before_work(capsys, box, data_files, inputs, labels, extra, fragment):
    argv = ["eval", str(zoo.path("lenet5")), "--trials", "1", "--inputs", data_files[inputs], *extra]
    if labels:
        argv += ["--labels", data_files[labels]]
    refused(capsys, argv, box, fragment, family="cli")


# -- safetensors headers ---------------------------------------------------------------------------------------
def _raw(header, data: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def _base():
    header = {"__metadata__": {"wkbnoise.arch": "lenet5"},
              "a.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b.weight": {"dtype": "F32", "shape": [4], "data_offsets": [24, 40]}}
    return header, np.arange(10, dtype=np.float32).tobytes()


_JUNK = st.one_of(st.none(), st.booleans(), st.text(max_size=4), st.floats(allow_nan=False, allow_infinity=False),
                  st.integers(-2**70, -1), st.lists(st.integers(0, 100), max_size=4), st.dictionaries(st.text(max_size=2),
                                                                                                     st.integers(), max_size=2))
MUTATIONS = {
    "offsets": lambda: _JUNK.filter(lambda v: v != [0, 24]),
    "shape": lambda: _JUNK.filter(lambda v: v not in ([2, 3], [3, 2], [6], [1, 6], [6, 1], [2, 3, 1], [1, 2, 3])),
    "dtype": lambda: _JUNK.filter(lambda v: v not in ("F32", "I32", "U32")),
    "entry": lambda: _JUNK,
}


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_headers_one_line_naming_the_file(capsys, box, tmp_path_factory, data):
    header, payload = _base()
    what = data.draw(st.sampled_from(sorted(MUTATIONS)))
    value = data.draw(MUTATIONS[what]())
    key = {"offsets": "data_offsets", "shape": "shape", "dtype": "dtype"}.get(what)
    if key:
        header["a.weight"][key] = value
    else:
        header["a.weight"] = value
    TRIED["header"].add(json.dumps(header, sort_keys=True, default=str))
    folder = tmp_path_factory.mktemp("hdr")
    path = folder / "bad.safetensors"
    path.write_bytes(_raw(header, payload))
    line = refused(capsys, ["info", str(path)], box, "bad.safetensors", family="header")
    assert "Re-export" in line or "Cast it" in line or "truncated" in line, line


LAYOUTS = [
    ("overlap", {"a.weight": [0, 24], "b.weight": [16, 32]}, 32, "overlaps"),
    ("gap", {"a.weight": [0, 24], "b.weight": [28, 44]}, 44, "belong to no tensor"),
    ("tail", {"a.weight": [0, 24], "b.weight": [24, 40]}, 48, "belongs to no tensor"),
    ("start", {"a.weight": [8, 32], "b.weight": [32, 48]}, 48, "belong to no tensor"),
    ("reversed", {"a.weight": [24, 0], "b.weight": [24, 40]}, 40, "start <= end"),
    ("beyond", {"a.weight": [0, 24], "b.weight": [24, 400]}, 40, "truncated"),
    ("span", {"a.weight": [0, 20], "b.weight": [20, 40]}, 40, "needs 24 bytes"),
]


@pytest.mark.parametrize("name, offsets, size, fragment", LAYOUTS, ids=[x[0] for x in LAYOUTS])
def test_offsets_that_do_not_tile_the_buffer(capsys, box, tmp_path, name, offsets, size, fragment):
    header, _ = _base()
    for k, v in offsets.items():
        header[k]["data_offsets"] = v
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(_raw(header, bytes(size)))
    TRIED["header"].add(name)
    refused(capsys, ["info", str(path)], box, f"{name}.safetensors", fragment, family="header")


@pytest.mark.parametrize("raw, fragment", [
    (b"", "fewer than the 8-byte"),
    (struct.pack("<Q", 10**6) + b"{}", "does not fit"),
    (struct.pack("<Q", 4) + b"\xff\xfe{}", "not JSON"),
    (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    (_raw({"__metadata__": {"a": 1}}, b""), "__metadata__"),
    (_raw({"__metadata__": [1]}, b""), "__metadata__"),
], ids=["empty", "length", "utf8", "array", "metaval", "metalist"])
def test_headers_that_are_not_safetensors(capsys, box, tmp_path, raw, fragment):
    path = tmp_path / "x.safetensors"
    path.write_bytes(raw)
    TRIED["header"].add(raw)
    refused(capsys, ["info", str(path)], box, "x.safetensors", fragment, family="header")


def _zoo_tensors(name):
    from safetensors.numpy import load_file

    from wkbnoise.runtime.loader import read_header

    return {k: v.copy() for k, v in load_file(str(zoo.path(name))).items()}, read_header(zoo.path(name))[1]


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("tensor", ["conv1.weight", "fc3.bias"])
def test_non_finite_weights_name_file_and_tensor(capsys, box, tmp_path, recwarn, value, tensor):
    from safetensors.numpy import save_file

    tensors, meta = _zoo_tensors("lenet5")
    tensors[tensor].reshape(-1)[3] = value
    path = tmp_path / "nan.safetensors"
    save_file(tensors, str(path), metadata=meta)
    TRIED["header"].add((tensor, str(value)))
    refused(capsys, ["info", str(path)], box, "nan.safetensors", repr(tensor), "NaN or inf", family="header")
    assert not [w for w in recwarn if "numpy" in str(w.filename).lower() or "RuntimeWarning" in str(w.category)]


@pytest.mark.parametrize("config, fragment", [
    ({"heads": 0}, "heads=0"), ({"heads": 3}, "not a multiple"), ({"heads": -4}, "heads=-4"),
    ({"dim": "64"}, "dim='64'"), ({"depth": 1.5}, "depth=1.5"), ({"eps": 0}, "eps=0"),
])
def test_vit_configs_that_cannot_build(capsys, box, tmp_path, config, fragment):
    from safetensors.numpy import save_file

    tensors, meta = _zoo_tensors("vit")
    cfg = {**json.loads(meta["wkbnoise.config"]), **config}
    meta = {**meta, "wkbnoise.config": json.dumps(cfg)}
    path = tmp_path / "vit.safetensors"
    save_file(tensors, str(path), metadata=meta)
    TRIED["header"].add(json.dumps(cfg, sort_keys=True))
    refused(capsys, ["info", str(path)], box, "vit.safetensors", fragment, family="header")


@pytest.mark.parametrize("spec, fragment", [
    ({"std": 0}, "std=0"), ({"std": -1}, "std=-1"), ({"mean": "x"}, "mean='x'"), ({"shape": [1, 28]}, "shape"),
])
def test_input_normalisation_that_divides_by_zero(capsys, box, tmp_path, spec, fragment):
    from safetensors.numpy import save_file

    tensors, meta = _zoo_tensors("lenet5")
    meta = {**meta, "wkbnoise.input": json.dumps({**json.loads(meta["wkbnoise.input"]), **spec})}
    path = tmp_path / "in.safetensors"
    save_file(tensors, str(path), metadata=meta)
    TRIED["header"].add(json.dumps(spec))
    refused(capsys, ["info", str(path)], box, "in.safetensors", fragment, family="header")


# -- the resume journal ------------------------------------------------------------------------------------------
CFG = json.dumps({"run": "test"})


def _record(key="points/m/r0/tac/0.2500", **arrays):
    arrays = arrays or {"accuracy": np.array([0.5, 0.75])}
    return {"key": key, "attrs": {"method": "tac"},
            "data": {k: {"dtype": v.dtype.str, "shape": list(v.shape), "b64": base64.b64encode(v.tobytes()).decode()}
                     for k, v in arrays.items()}}


def _damage(rec, what, junk):
    rec = json.loads(json.dumps(rec))
    arr = rec["data"]["accuracy"]
    if what == "drop":
        rec.pop(junk)
    elif what == "b64":
        arr["b64"] = junk
    elif what == "shape":
        arr["shape"] = junk
    elif what == "dtype":
        arr["dtype"] = junk
    elif what == "key":
        rec["key"] = junk
    elif what == "array":
        rec["data"]["accuracy"] = junk
    return rec


JOURNAL_DAMAGE = {
    "drop": st.sampled_from(["key", "attrs", "data"]),
    "b64": st.text(min_size=1, max_size=12).filter(lambda t: _bad_b64(t)),
    "shape": st.one_of(_JUNK, st.lists(st.integers(0, 9), min_size=1, max_size=3)).filter(lambda v: v != [2]),
    "dtype": st.one_of(st.sampled_from(["<U4", "O", "garbage", "<c16", "", "V8"]), st.none(), st.integers(),
                       st.lists(st.text(max_size=2), max_size=2)),
    "key": st.one_of(st.none(), st.integers(), st.just(""), st.just("/abs"), st.lists(st.text(max_size=2), max_size=2)),
    "array": _JUNK,
}


def _bad_b64(t):
    try:
        raw = base64.b64decode(t, validate=True)
    except ValueError:
        return True
    return len(raw) != 16


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_journal_names_file_and_line(tmp_path_factory, data):
    from wkbnoise.errors import StoreError
    from wkbnoise.evaluation.store import RunStore

    what = data.draw(st.sampled_from(sorted(JOURNAL_DAMAGE)))
    junk = data.draw(JOURNAL_DAMAGE[what])
    bad = _damage(_record(), what, junk)
    lines = [json.dumps({"config": CFG, "versions": {}}), json.dumps(_record("points/m/r0/tac/0.5000")),
             json.dumps(bad)]
    TRIED["journal"].add(lines[-1])
    folder = tmp_path_factory.mktemp("journal")
    run = folder / "run.h5"
    journal = folder / "run.h5.journal"
    journal.write_text("\n".join(lines) + "\n")
    before = _listing(folder)
    with pytest.raises(StoreError) as exc:
        RunStore(run, CFG)
    msg = str(exc.value)
    assert "\n" not in msg and "run.h5.journal" in msg and "line 3" in msg and "--out" in msg, msg
    assert _listing(folder) == before


@pytest.mark.parametrize("line", [b"{not json", b"[1, 2]", b"42", b'"text"'])
def test_journal_lines_that_are_not_records(tmp_path, line):
    from wkbnoise.errors import StoreError
    from wkbnoise.evaluation.store import RunStore

    (tmp_path / "run.h5.journal").write_bytes(json.dumps({"config": CFG}).encode() + b"\n" + line + b"\n")
    TRIED["journal"].add(line)
    with pytest.raises(StoreError, match="line 2"):
        RunStore(tmp_path / "run.h5", CFG)


def test_journal_cut_off_by_a_kill_is_not_damage(tmp_path):
    from wkbnoise.evaluation.store import RunStore

    good = json.dumps(_record()).encode()
    (tmp_path / "run.h5.journal").write_bytes(json.dumps({"config": CFG}).encode() + b"\n" + good + b"\n" + good[:17])
    store = RunStore(tmp_path / "run.h5", CFG, readonly=True)
    assert store.keys() == ["points/m/r0/tac/0.2500"]


def _eval_config_json(lenet, out):
    """The configuration `eval LENET --trials 1 --images 10` stores (built as the command builds it)."""
    from wkbnoise.cli.evaluation import _models
    from wkbnoise.evaluation.protocol import FULL, eval_config

    return eval_config(_models(lenet), settings=FULL, trials=1, n_images=10).to_json()


@pytest.mark.parametrize("damage, fragment", [
    ("no-G", "lacks G"), ("G-shape", "holds G of shape"), ("no-accuracy", "lacks accuracy"),
    ("b64", "line 2"), ("shape", "line 2"), ("nofield", "line 2"),
])
def test_damaged_run_through_the_cli(capsys, tmp_path, damage, fragment):
    lenet = str(zoo.path("lenet5"))
    out = tmp_path / "run.h5"
    cfg = _eval_config_json(lenet, out)
    names = [ly.name for ly in zoo.load("lenet5").layers]
    g = np.ones(len(names))
    model = {"G": g, "n_weights": np.ones(len(names), np.int64), "scale": g}
    attrs = {"clean": 1.0, "int8": 1.0, "metric": "accuracy"}
    if damage == "no-G":
        model.pop("G")
    if damage == "G-shape":
        model["G"] = np.ones(2)
    rec = _record("models/lenet5", **model)
    rec["attrs"] = attrs
    if damage == "no-accuracy":
        rec = _record("points/lenet5/r0/none/0.0000", distortion=np.ones(1))
        rec["attrs"] = {"plan": "{}", "cost_bits": 0}
    if damage == "b64":
        rec["data"]["G"]["b64"] = "!!!"
    if damage == "shape":
        rec["data"]["G"]["shape"] = [3, 3]
    if damage == "nofield":
        rec.pop("attrs")
    (tmp_path / "run.h5.journal").write_text(json.dumps({"config": cfg, "versions": {}}) + "\n" + json.dumps(rec) + "\n")
    TRIED["journal"].add(("cli", damage))
    line = refused(capsys, ["eval", lenet, "--trials", "1", "--images", "10", "--out", str(out)], tmp_path, fragment,
                   family="journal")
    assert "run.h5" in line and ("--out" in line or "Delete" in line)


# -- the library -------------------------------------------------------------------------------------------------
def _stats():
    from wkbnoise import FlipRates
    from wkbnoise.allocation import LayerStat

    r = FlipRates.symmetric(0.01)
    return [LayerStat("a", 100, 0.1, 1.0, r), LayerStat("b", 50, 0.2, 2.0, r)]


def _lib_cases():
    from wkbnoise import FlipRates
    from wkbnoise.allocation import (LayerStat, plan_cost, plan_for, plan_to_json, predicted_distortion,
                                     residual_variance, rho_star, uniform_distortion)
    from wkbnoise.runtime import load_model

    r = FlipRates.symmetric(0.01)
    return {
        "load_model(None)": lambda: load_model(None),
        "load_model(123)": lambda: load_model(123),
        "load_model(config=5)": lambda: load_model(zoo.path("lenet5").with_name("nothere.safetensors"), 5),
        "plan_for budget 'abc'": lambda: plan_for("tac", _stats(), "abc"),
        "plan_for budget None": lambda: plan_for("tac", _stats(), None),
        "plan_for budget nan": lambda: plan_for("tac", _stats(), float("nan")),
        "LayerStat nan G": lambda: LayerStat("a", 10, 0.1, float("nan"), r),
        "LayerStat -size": lambda: LayerStat("a", -10, 0.1, 1.0, r),
        "LayerStat 0 size": lambda: LayerStat("a", 0, 0.1, 1.0, r),
        "LayerStat inf scale": lambda: LayerStat("a", 10, float("inf"), 1.0, r),
        "LayerStat str G": lambda: LayerStat("a", 10, 0.1, "1", r),
        "plan_cost unknown": lambda: plan_cost(_stats(), {"zz": 1}),
        "predicted unknown": lambda: predicted_distortion(_stats(), {"zz": 1}),
        "plan_cost m=9": lambda: plan_cost(_stats(), {"a": 9}),
        "plan_cost m=-1": lambda: plan_cost(_stats(), {"a": -1}),
        "predicted m='x'": lambda: predicted_distortion(_stats(), {"a": "x"}),
        "plan_to_json m=12": lambda: plan_to_json(_stats(), {"b": 12}),
        "residual m=9": lambda: residual_variance(r, 9),
        "residual m=-1": lambda: residual_variance(r, -1),
        "uniform m=9": lambda: uniform_distortion(_stats(), 9),
        "rho_star m=-2": lambda: rho_star(_stats(), -2),
    }


@pytest.mark.parametrize("name", list(_lib_cases()))
def test_library_mistakes_raise_wkbnoise_errors(name):
    from wkbnoise.errors import WkbnoiseError

    TRIED["library"].add(name)
    with pytest.raises(WkbnoiseError) as exc:
        _lib_cases()[name]()
    assert "\n" not in str(exc.value)


@pytest.fixture(scope="module")
def evaluator():
    from wkbnoise.evaluation.campaign import Evaluator

    images, labels = zoo.test_set()
    return Evaluator(zoo.load("lenet5"), images[:8], labels[:8])


@pytest.mark.parametrize("plan", [{"conv1.weight": "x"}, {"conv1.weight": 9}, {"conv1.weight": -1},
                                  {"conv1.weight": 1.5}, {"conv1.weight": None}, {"nope": 1}])
def test_evaluator_refuses_bad_plans(evaluator, plan):
    from wkbnoise import FlipRates
    from wkbnoise.errors import InputError

    TRIED["library"].add(("plan", json.dumps(plan)))
    with pytest.raises(InputError):
        evaluator.run(FlipRates.symmetric(0.1), method="tac", plan=plan, trials=1)


@pytest.mark.parametrize("images, labels, fragment", [
    (np.zeros((0, 1, 28, 28), np.uint8), None, "0 inputs"),
    (np.full((2, 1, 28, 28), np.nan, np.float32), None, "NaN"),
    (np.zeros((2, 1, 28, 28), np.uint8), np.zeros((2, 1), np.int64), "1-D"),
    (np.zeros((2, 1, 28, 28), np.uint8), np.array([0, 17]), "17"),
    (np.zeros((2, 1, 28, 28), np.uint8), np.array([0, -1]), "negative"),
    (np.zeros((2, 1, 28, 28), np.uint8), np.array([0.0, 0.5]), "not an integer"),
    (np.zeros((2, 1, 28, 28), np.uint8), np.array(["a", "b"]), "dtype"),
])
def test_evaluator_refuses_bad_inputs(images, labels, fragment):
    from wkbnoise.errors import InputError
    from wkbnoise.evaluation.campaign import Evaluator

    TRIED["library"].add((images.shape, str(images.dtype), None if labels is None else labels.tobytes()))
    with pytest.raises(InputError, match=fragment):
        Evaluator(zoo.load("lenet5"), images, labels)


# -- a few real processes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    (("eval", "--trails", "1"), "did you mean --trials?"),
    (("physics", "--thicknes-nm", "4"), "did you mean --thickness-nm?"),
    (("validate", "--samples", "1e12"), "--samples"),
])
def test_real_process_refuses_in_one_line(cli, args, fragment):
    from conftest import assert_one_line_error

    assert_one_line_error(cli(*args), fragment)


def test_real_process_help_lists_commands(cli):
    r = cli("--help")
    assert r.returncode == 0 and r.stderr == ""
    for name in CMDS:
        assert f"\n  {name}" in r.stdout
    page = cli("physics", "--help").stdout
    assert "--thickness-nm X" in page and "Type:" not in page and "INFO:" not in page and "_nm" not in page


def test_zz_counts():
    """At least 100 distinct bad inputs over the families, every one handled (the tests above assert it)."""
    if not all(TRIED[f] for f in FAMILIES):
        pytest.skip("run the whole file to count")
    counts = {f: len(TRIED[f]) for f in FAMILIES}
    target = os.environ.get("WKBNOISE_MISTAKE_COUNTS")
    if target:
        Path(target).write_text(json.dumps(counts) + "\n")
    assert sum(counts.values()) >= 100, counts
    assert counts["cli"] >= 50 and counts["header"] >= 30 and counts["journal"] >= 30, counts
