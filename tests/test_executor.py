"""Trials farmed out: blocks of trials equal one serial run bit for bit, in this process and on a
two-worker Dask cluster; the client alone writes the run file, so a campaign resumes after a worker or
the client dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error
from standin_models import TwoLayer, campaign_inputs, campaign_loader

from wkbnoise.errors import InputError
from wkbnoise.evaluation.campaign import Evaluator
from wkbnoise.evaluation.config import ModelSpec, RateSpec, SweepConfig
from wkbnoise.evaluation.executor import (
    EvaluatorRecipe,
    SerialExecutor,
    TrialRequest,
    check_executor_args,
    fingerprint,
    join_blocks,
    open_executor,
    split_blocks,
)
from wkbnoise.evaluation.store import RunStore
from wkbnoise.evaluation.sweep import run_sweep
from wkbnoise.rates import FlipRates

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

METHODS = ("none", "correct-only", "uniform-msp", "magnitude", "tac", "tac-bayes", "gaussian")
CONFIG = SweepConfig(models=(ModelSpec("a", (RateSpec.symmetric(0.05),)),), methods=METHODS,
                     budgets=(0.25, 1.0, 2.0), trials=5, calibration=64, draws=2)


def _evaluator():
    model = TwoLayer(d_in=32, d_hidden=24, d_out=6, relu=True, seed=3)
    x = np.random.default_rng(1).standard_normal((200, 32)).astype(np.float32)
    return Evaluator(model, x, np.argmax(model(x), axis=1))


def _norm(v):
    v = v.tolist() if isinstance(v, np.ndarray | np.generic) else v
    return repr(v.decode() if isinstance(v, bytes) else v)


def _records(path):
    """``{key: (attrs as repr, data)}`` of a run, read-only (HDF5 file plus journal)."""
    records = RunStore.read(path).records
    return {k: ({a: _norm(v) for a, v in attrs.items()}, data) for k, (attrs, data) in records.items()}


def _assert_same_records(got, expected, *, complete=True):
    if complete:
        assert sorted(got) == sorted(expected)
    for key, (attrs, data) in got.items():
        assert attrs == expected[key][0], key
        assert sorted(data) == sorted(expected[key][1]), key
        for k, v in data.items():
            # bit for bit (NaN where the reference has NaN: rho* at m = 0)
            np.testing.assert_array_equal(v, expected[key][1][k], err_msg=f"{key}/{k}")
            assert v.dtype == expected[key][1][k].dtype


# -- blocks of trials ----------------------------------------------------------------------------------------
def test_blocks_of_a_point_equal_one_run():
    ev = _evaluator()
    rates = FlipRates.symmetric(0.08)
    plan = {"fc1": 1}
    whole = ev.run(rates, method="tac", plan=plan, trials=7, seed=11, point=(0, 5, 2500, 0))
    req = TrialRequest.of(rates, "tac", plan, (0, 5, 2500, 0), 11, 7)
    blocks = split_blocks([req], 2)
    assert [(b.start, b.stop) for _, b in blocks] == [(0, 1), (1, 3), (3, 5), (5, 7)]
    joined = join_blocks([b.run(ev) for _, b in reversed(blocks)][::-1])  # run out of order, joined in order
    np.testing.assert_array_equal(joined.accuracy, whole.accuracy)
    np.testing.assert_array_equal(joined.distortion, whole.distortion)
    assert len(set(whole.distortion.tolist())) == 7  # every trial differs: a shifted block would show
    # a block that starts one trial late draws other faults
    shifted = req.block(1, 8).run(ev)
    np.testing.assert_array_equal(shifted.distortion[:6], whole.distortion[1:])
    assert shifted.distortion[6] not in whole.distortion.tolist()
    with pytest.raises(InputError, match="start"):
        ev.run(rates, trials=2, start=-1)


def test_blocks_carry_the_real_code():
    ev = _evaluator()
    rates = FlipRates.symmetric(0.05)
    plan = {"fc1": 2, "fc2": 2}
    req = TrialRequest.of(rates, "tac", plan, (1, 2), 5, 6, code="secded-39-32")
    coded = ev.run(rates, method="tac", plan=plan, trials=6, seed=5, point=(1, 2), code="secded-39-32")
    joined = join_blocks([b.run(ev) for _, b in split_blocks([req], 2)])
    np.testing.assert_array_equal(joined.distortion, coded.distortion)
    ideal = ev.run(rates, method="tac", plan=plan, trials=6, seed=5, point=(1, 2))
    assert not np.array_equal(ideal.distortion, coded.distortion)  # the code changes the numbers


@pytest.mark.parametrize("n_requests, trials, slots",
                         [(1, 7, 2), (3, 4, 2), (20, 30, 2), (1, 2, 8), (5, 1, 3)])
def test_split_blocks_partition_every_request(n_requests, trials, slots):
    reqs = [TrialRequest.of(FlipRates.symmetric(0.1), "none", {}, (i,), 0, trials, start=3 * i)
            for i in range(n_requests)]
    blocks = split_blocks(reqs, slots)
    per = -(-2 * slots // n_requests)
    for i, req in enumerate(reqs):
        mine = [b for j, b in blocks if j == i]
        assert len(mine) == min(per, trials)
        assert mine[0].start == req.start and mine[-1].stop == req.stop
        assert all(a.stop == b.start for a, b in zip(mine[:-1], mine[1:], strict=True))
        sizes = [b.trials for b in mine]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
        assert all(b.point == req.point and b.plan == req.plan for b in mine)


def test_serial_executor_runs_in_order_on_the_callers_evaluator():
    ev = _evaluator()
    reqs = [TrialRequest.of(FlipRates.symmetric(p), "none", {}, (k,), 0, 3)
            for k, p in enumerate((0.02, 0.2))]
    out = list(SerialExecutor().trials(None, ev, reqs))
    assert [i for i, _ in out] == [0, 1]
    alone = ev.run(FlipRates.symmetric(0.2), trials=3, point=(1,))
    np.testing.assert_array_equal(out[1][1].accuracy, alone.accuracy)


def test_recipe_builds_the_clients_evaluator_with_absolute_paths(tmp_path, monkeypatch):
    import dataclasses

    recipe = EvaluatorRecipe.of(CONFIG, 0, campaign_loader, campaign_inputs)
    model = campaign_loader(CONFIG.models[0])
    x, labels, _ = campaign_inputs(CONFIG, model)
    assert fingerprint(recipe.build()) == fingerprint(Evaluator(model, x, labels))
    # workers run in other folders: the recipe's paths are absolute, the rest of the configuration as given
    monkeypatch.chdir(tmp_path)
    cfg = SweepConfig(models=(ModelSpec("m", (RateSpec.symmetric(0.1),), "sub/m.safetensors"),),
                      inputs="x.safetensors", trials=3)
    got = SweepConfig.from_json(EvaluatorRecipe.of(cfg, 0, campaign_loader, campaign_inputs).config)
    assert got.models[0].path == str(tmp_path / "sub" / "m.safetensors")
    assert got.inputs == str(tmp_path / "x.safetensors") and got.labels is None
    assert dataclasses.replace(got, models=cfg.models, inputs=cfg.inputs) == cfg


# -- flags ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("workers, scheduler, fragment", [
    (0, None, "--workers=0 must be an integer >= 1"),
    (True, None, "--workers=True"),
    (2.5, None, "--workers=2.5"),
    (2, "tcp://127.0.0.1:8786", "not both"),
    (None, "localhost:8786", "tcp://HOST:PORT"),
    (None, "tcp://host", "tcp://HOST:PORT"),
    (None, "tcp://host:99999", "tcp://HOST:PORT"),
    (None, "http://host:8786", "tcp://HOST:PORT"),
    (None, 8786, "tcp://HOST:PORT"),
])
def test_bad_executor_args_are_refused(workers, scheduler, fragment):
    with pytest.raises(InputError, match=fragment.replace("+", r"\+").replace(".", r"\.")):
        check_executor_args(workers, scheduler)


def test_good_executor_args_pass_and_serial_is_the_default():
    assert check_executor_args() == (None, None)
    with open_executor() as ex:
        assert isinstance(ex, SerialExecutor)


def test_missing_dask_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    for kwargs in ({"workers": 2}, {"scheduler": "tcp://10.0.0.5:8786"}):
        with pytest.raises(InputError, match=r"install wkbnoise\[dask\]"):
            check_executor_args(**kwargs)


@pytest.mark.parametrize("args, fragments", [
    (["--workers", "0"], ["--workers=0", ">= 1"]),
    (["--scheduler", "nowhere"], ["--scheduler", "tcp://HOST:PORT"]),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], ["--workers", "--scheduler", "not both"]),
])
def test_cli_executor_flags_exit_2_one_line(cli, args, fragments):
    assert_one_line_error(cli("eval", *args), *fragments)
    assert_one_line_error(cli("reproduce", "--quick", *args), *fragments)


def test_unreachable_scheduler_is_one_error():
    pytest.importorskip("distributed")
    t0 = time.monotonic()
    with pytest.raises(InputError, match="no Dask scheduler answered"), open_executor(
            scheduler="tcp://127.0.0.1:9", connect_timeout_s=1.0):
        pass
    assert time.monotonic() - t0 < 30


# -- the workers' allocator -----------------------------------------------------------------------------
def _faults_of_fresh_arrays(n: int = 40, mib: int = 4) -> int:
    """Page faults of ``n`` arrays of ``mib`` MiB, each written once and freed, as a forward pass's
    activations are."""
    import resource  # Unix only: imported where it is used

    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        np.ones(mib << 18, np.float32)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0


_ALLOCATOR_SCRIPT = r"""
import json
from test_executor import _faults_of_fresh_arrays
from wkbnoise.evaluation._dask import reuse_freed_memory
_faults_of_fresh_arrays(2)
before = _faults_of_fresh_arrays()
ok = reuse_freed_memory()
_faults_of_fresh_arrays(2)
print(json.dumps([before, ok, _faults_of_fresh_arrays()]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_worker_allocator_reuses_freed_memory_under_dasks_trim_threshold():
    """Under Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` every 4 MiB array is mapped afresh (hundreds of page
    faults each: 514 here, fewer than its 1,024 pages where the kernel maps huge pages); after
    ``reuse_freed_memory`` the freed block is reused (no faults)."""
    pytest.importorskip("distributed")
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="65536", PYTHONPATH=_pythonpath())
    done = subprocess.run([sys.executable, "-c", _ALLOCATOR_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    before, ok, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert ok is True
    assert before > 40 * 100  # the check sees the problem: a fresh mapping per array
    assert after < 40 * 5


# -- a two-worker cluster --------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_worker_cluster_matches_serial_bit_for_bit(tmp_path, monkeypatch):
    """A running two-process cluster reached by its address (as --scheduler does); the resume test below
    covers --workers."""
    distributed = pytest.importorskip("distributed")
    from wkbnoise.evaluation._dask import PLUGIN, QUIET_HTTP, WORKER_ENV, DaskExecutor

    serial = run_sweep(CONFIG, tmp_path / "serial.h5", progress=False, loader=campaign_loader,
                       inputs=campaign_inputs)
    # the workers import the loader from tests/standin_models.py
    monkeypatch.setenv("PYTHONPATH", _pythonpath())
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       env=dict(WORKER_ENV), **QUIET_HTTP)
    with cluster, open_executor(scheduler=cluster.scheduler_address) as ex:
        assert isinstance(ex, DaskExecutor) and ex.workers == 2
        said = []
        run_sweep(CONFIG, tmp_path / "dask.h5", progress=False, loader=campaign_loader,
                  inputs=campaign_inputs, executor=ex, log=said.append)
        assert said[0] == f"trials run on the Dask cluster at {cluster.scheduler_address} (2 worker threads)"
        # both workers built the model once and kept it
        built = ex.client.run(lambda dask_worker: len(dask_worker.plugins[PLUGIN]._entries))
        assert sorted(built.values()) == [1, 1]
        # the plugin set the workers' allocator to reuse freed arrays (Dask's nanny had turned that off)
        ex.client.run(_faults_of_fresh_arrays, 2)  # the heap grows to hold one array (its first faults)
        faults = ex.client.run(_faults_of_fresh_arrays)
        assert len(faults) == 2 and max(faults.values()) < 40 * 5, faults
        # a worker that builds another model than the client's is refused
        ev = _evaluator()
        recipe = EvaluatorRecipe(CONFIG.to_json(), 0, campaign_loader, campaign_inputs)
        req = TrialRequest.of(FlipRates.symmetric(0.05), "none", {}, (0,), 0, 2)
        with pytest.raises(InputError, match="another model"):
            list(ex.trials(recipe, ev, [req]))
    expected = _records(tmp_path / "serial.h5")
    got = _records(tmp_path / "dask.h5")
    assert len(expected) == len(serial.records) > 25
    assert sum(k.startswith("crossings/") for k in got) == len(CONFIG.crossing) >= 2
    _assert_same_records(got, expected)


# -- resume: a worker killed, then the client killed --------------------------------------------------
_SCRIPT = r'''
import json, os, sys, time
from pathlib import Path
from standin_models import TwoLayer, campaign_inputs, campaign_model_kwargs
from wkbnoise.evaluation.config import SweepConfig
from wkbnoise.evaluation.executor import open_executor
from wkbnoise.evaluation.sweep import run_sweep


class Slow(TwoLayer):
    """The stand-in model, 20 ms per forward pass: the run lasts long enough to be killed in the middle."""

    def forward(self, x, weights=None, batch_size=256):
        time.sleep(0.02)
        return super().forward(x, weights, batch_size)

    __call__ = forward


def loader(spec):
    return Slow(**campaign_model_kwargs(spec.name))


if __name__ == "__main__":
    config = SweepConfig.from_json(Path(sys.argv[3]).read_text())
    with open_executor(workers=2) as ex:
        Path(sys.argv[2]).write_text(json.dumps(sorted(ex.client.run(os.getpid).values())))
        run_sweep(config, sys.argv[1], progress=False, loader=loader, inputs=campaign_inputs, executor=ex)
'''


def _pythonpath():
    """PYTHONPATH for worker processes: tests/ (the stand-in models) and the checkout first."""
    return os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")])


def _alive(pids):
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    return alive


def _count(run):
    try:
        return len(_records(run))
    except Exception:  # not written yet, or caught between rename and read
        return 0


@pytest.mark.slow
def test_resume_after_a_worker_and_the_client_are_killed(tmp_path):
    pytest.importorskip("distributed")
    config = SweepConfig(models=CONFIG.models, methods=CONFIG.methods, budgets=CONFIG.budgets, trials=8,
                         calibration=64, draws=2)
    run_sweep(config, tmp_path / "ref.h5", progress=False, loader=campaign_loader, inputs=campaign_inputs)
    expected = _records(tmp_path / "ref.h5")
    total = len(expected)
    script, cfg, pids = tmp_path / "sweep.py", tmp_path / "config.json", tmp_path / "pids.json"
    script.write_text(_SCRIPT)
    cfg.write_text(config.to_json())
    env = dict(os.environ, PYTHONPATH=_pythonpath())
    run = tmp_path / "run.h5"
    cmd = [sys.executable, str(script), str(run), str(pids), str(cfg)]
    proc = subprocess.Popen(cmd, env=env)
    killed_worker = killed_client = False
    try:
        while proc.poll() is None:
            n = _count(run)
            if not killed_worker and n >= 4 and pids.exists():
                os.kill(json.loads(pids.read_text())[0], signal.SIGKILL)  # Dask runs its blocks again
                killed_worker = True
            if killed_worker and n >= total // 2:
                proc.send_signal(signal.SIGKILL)
                killed_client = True
                break
            time.sleep(0.01)
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed_worker and killed_client, (killed_worker, killed_client, _count(run), total)
    partial = _records(run)
    assert 4 <= len(partial) < total
    _assert_same_records(partial, expected, complete=False)  # nothing finished is lost or half written
    # the client's workers leave with it
    workers = json.loads(pids.read_text())
    deadline = time.monotonic() + 60
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(workers)
    subprocess.run(cmd, env=env, check=True, timeout=600)
    _assert_same_records(_records(run), expected)
