"""The Ray backend on a real local Ray (2 CPUs): distributed labelling equals the single-process run, a worker
killed mid-unit and a whole job killed and restarted both end with every unit exactly once, failing units are
recorded with their reason, bad input is one line."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray")

from conftest import sorted_json_lines  # noqa: E402
from pathprune.cli import main  # noqa: E402
from pathprune.evaluation.sources import load_problems  # noqa: E402
from pathprune.distributed import run_units, run_units_here  # noqa: E402
from pathprune.distributed.labelling import run_labelling_distributed  # noqa: E402
from pathprune.distributed.ray_executor import ACTOR_PREFIX, RayPool  # noqa: E402
from pathprune.errors import PathpruneError  # noqa: E402
from pathprune.io.runlog import RunLog  # noqa: E402
from pathprune.models import load_model  # noqa: E402
from pathprune.stop.labels import LabelConfig, run_labelling  # noqa: E402

LEVELS, PER_LEVEL = "7,8", 3
CFG = LabelConfig(n_filter=8, k=4, prefix_tokens=(12, 20))
CLI_ARGS = ["--levels", LEVELS, "--per-level", str(PER_LEVEL), "--n-filter", "8", "--k", "4",
            "--prefix-tokens", "12,20"]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (the pool reuses a running ray.init)."""
    tmp = tempfile.mkdtemp(prefix="pprt-", dir="/tmp")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=tmp,
             namespace="pathprune", configure_logging=False)
    yield
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def problems():
    return load_problems(None, "train", LEVELS, PER_LEVEL, None, 0)


@pytest.fixture(scope="module")
def reference(problems, tmp_path_factory):
    """The single-process labelling run (the existing in-process path)."""
    out = tmp_path_factory.mktemp("ref")
    model, tok = load_model("testbed")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the results do not depend on it; 2 threads crawl on a busy 2-core machine
    try:
        run_labelling(model, tok, problems, CFG, out, "testbed")
    finally:
        torch.set_num_threads(threads)
    return out


def _assert_same_run(out: Path, ref: Path) -> None:
    units = [json.loads(line)["problem_id"] for line in (out / "problems.jsonl").read_text().splitlines()]
    assert len(units) == len(set(units)), "a unit was written twice"
    assert sorted_json_lines(out / "labels.jsonl") == sorted_json_lines(ref / "labels.jsonl")
    assert sorted_json_lines(out / "problems.jsonl") == sorted_json_lines(ref / "problems.jsonl")
    assert json.loads((out / "config.json").read_text()) == json.loads((ref / "config.json").read_text())


def _busy_worker_pid(timeout: float = 20.0) -> int:
    """The pid of one of our actors that is running a unit right now (its process title says ``.run``)."""
    import psutil

    pids = []
    for name in ray.util.list_named_actors():
        if name.startswith(ACTOR_PREFIX):
            try:
                pids.append(ray.get(ray.get_actor(name).pid.remote(), timeout=10))
            except Exception:  # noqa: BLE001 - an actor already gone
                pass
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in pids:
            try:
                if ".run" in " ".join(psutil.Process(pid).cmdline()):
                    return pid
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.01)
    raise AssertionError(f"no worker was busy among {pids}")


def test_distributed_labelling_equals_single_process(local_ray, problems, reference, tmp_path):
    log, stats = run_labelling_distributed("testbed", problems, CFG, tmp_path, workers=2)
    assert stats.workers == 2 and stats.done == len(problems) and stats.failed == stats.worker_deaths == 0
    _assert_same_run(tmp_path, reference)


def test_labelling_in_process_goes_through_the_same_runner(problems, reference, tmp_path):
    """workers=1: the local executor, the run config opened from the worker's fingerprint, the same records."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the reference: 2 threads crawl on a busy 2-core machine
    try:
        log, stats = run_labelling_distributed("testbed", problems, CFG, tmp_path, workers=1)
    finally:
        torch.set_num_threads(threads)
    assert stats.workers == 1 and stats.done == len(problems) == len(log.units) and stats.failed == 0
    _assert_same_run(tmp_path, reference)


def test_worker_killed_mid_unit_is_retried_elsewhere(local_ray, problems, reference, tmp_path):
    killer: list[threading.Thread] = []
    killed: list[int] = []

    def kill():
        pid = _busy_worker_pid()
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    def after_first_unit(n):  # kill from another thread: the driver must go on dispatching meanwhile
        if not killer:
            killer.append(threading.Thread(target=kill))
            killer[0].start()

    _, stats = run_labelling_distributed("testbed", problems, CFG, tmp_path, workers=2, max_retries=2,
                                         progress=after_first_unit)
    killer[0].join()
    assert killed and stats.worker_deaths == 1 and stats.retries == 1 and stats.failed == 0
    assert stats.done == len(problems)
    _assert_same_run(tmp_path, reference)


def _label_cli(out: Path, ray_tmp: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pathprune", "label", "--out", str(out), *CLI_ARGS,
                             "--workers", "2", "--ray-address", "local"], stdout=subprocess.DEVNULL,
                            stderr=open(out.parent / "stderr.txt", "w"), start_new_session=True,
                            env={**os.environ, "RAY_TMPDIR": ray_tmp})  # short: Ray's socket paths


def test_whole_job_killed_and_restarted(local_ray, problems, reference, tmp_path):
    out = tmp_path / "job"
    ray_tmp = tempfile.mkdtemp(prefix="ppk-", dir="/tmp")
    proc = _label_cli(out, ray_tmp)
    units = out / "problems.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and (
            not units.exists() or len(units.read_text().splitlines()) < 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started, like a scheduler killing the job
    proc.wait()
    shutil.rmtree(ray_tmp, ignore_errors=True)
    done = len(units.read_text().splitlines())
    assert 2 <= done < 4 * PER_LEVEL, f"the kill should land mid-run ({done} done)"
    # restart (here through the library on the test's Ray, to save a second Ray start-up)
    _, stats = run_labelling_distributed("testbed", problems, CFG, out, workers=2)
    assert stats.skipped == done and stats.done == len(problems) - done
    _assert_same_run(out, reference)


class FlakyWorker:
    """Payload (kind, id): ok, bad (raises), crash (its process dies every time), once (dies on the first try)."""

    def __init__(self, marker_dir: str):
        self.dir = Path(marker_dir)

    def __call__(self, payload):
        kind, uid = payload
        if kind == "bad":
            raise ValueError(f"cannot parse problem {uid}\nsecond line")
        if kind == "crash":
            os._exit(3)
        if kind == "once":
            try:
                os.close(os.open(self.dir / uid, os.O_CREAT | os.O_EXCL))
                os._exit(3)
            except FileExistsError:
                pass
        return {"problem_id": uid, "ok": True}, [{"problem_id": uid, "i": i} for i in range(3)]


UNITS = [("ok", f"p{i}") for i in range(6)] + [("bad", "b0"), ("crash", "c0"), ("once", "o0")]


def test_failing_units_are_recorded_and_the_job_finishes(local_ray, tmp_path):
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    log = RunLog(tmp_path / "run", {"test": 1})
    stats = run_units([(uid, (kind, uid)) for kind, uid in UNITS], lambda: FlakyWorker(str(tmp_path)), log,
                      workers=2, max_retries=1, failed_fields={"kept": False})
    rows = {u["problem_id"]: u for u in RunLog(tmp_path / "run", {"test": 1}).units}
    assert sorted(rows) == sorted(uid for _, uid in UNITS) and len(log.units) == len(UNITS)
    assert rows["b0"] == {"problem_id": "b0", "kept": False, "failed": True, "attempts": 2,
                          "error": "ValueError: cannot parse problem b0 second line"}
    assert rows["c0"]["failed"] and rows["c0"]["error"].startswith("worker died") and rows["c0"]["attempts"] == 2
    assert rows["o0"] == {"problem_id": "o0", "ok": True}
    assert len(log.items) == 3 * 7 and stats.done == 7 and stats.failed == 2
    assert stats.worker_deaths == 3 and stats.retries == 3


def test_in_process_runner_same_contract(tmp_path):
    log = RunLog(tmp_path, {"test": 2})
    units = [(uid, (kind, uid)) for kind, uid in UNITS if kind in ("ok", "bad")]
    stats = run_units(units, lambda: FlakyWorker(str(tmp_path)), log, workers=1, max_retries=2)
    assert stats.done == 6 and stats.failed == 1 and stats.retries == 2
    assert [u["attempts"] for u in log.units if u.get("failed")] == [3]
    again = run_units_here(units, FlakyWorker(str(tmp_path)), RunLog(tmp_path, {"test": 2}))
    assert again.skipped == 7 and again.done == 0


def test_bad_input_is_one_line(local_ray, tmp_path, capsys):
    with pytest.raises(PathpruneError, match="workers must be >= 0"):
        run_units([], FlakyWorker, RunLog(tmp_path, {}), workers=-1)
    with pytest.raises(PathpruneError, match="ray address must be"):
        RayPool(FlakyWorker, 2, ray_address="not an address").__enter__()
    t = time.time()
    with pytest.raises(PathpruneError, match="no Ray cluster at 127.0.0.1:1"):
        RayPool(FlakyWorker, 2, ray_address="127.0.0.1:1").__enter__()
    assert time.time() - t < 10
    with pytest.raises(PathpruneError, match="a worker could not start: PathpruneError: .*no-such-model"):
        run_labelling_distributed("no-such-model", [], CFG, tmp_path / "x", workers=2)
    for extra, message in ((["--workers", "-1"], "--workers must be >= 0"),
                           (["--workers", "2", "--ray-address", "127.0.0.1:1"], "no Ray cluster at 127.0.0.1:1")):
        assert main(["label", "--out", str(tmp_path / "cli"), *CLI_ARGS, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_distributed_eval_equals_single_process(local_ray, tmp_path):
    """`pathprune eval` on 2 Ray workers: the same paths, answers and kept sets as in process."""
    from pathprune.evaluation.offline import Setting, kept_paths
    from pathprune.evaluation.runs import EvalConfig, read_run, run_eval

    evals = load_problems(None, "test", "8", 2, None, 0)
    cfg = EvalConfig(model="testbed", signals=["mean_logprob", "random"], n=6, prefixes=[14], keeps=[2],
                     sampling=dict(max_new_tokens=120), seeds=[0, 1])
    model, tok = load_model("testbed")
    run_eval(model, tok, evals, cfg, tmp_path / "here")
    run_eval(None, None, evals, cfg, tmp_path / "ray", workers=2, resources={"num_cpus": 1})
    _, units_a, paths_a = read_run(tmp_path / "here")
    _, units_b, paths_b = read_run(tmp_path / "ray")
    assert sorted(u["unit_id"] for u in units_b) == sorted(u["unit_id"] for u in units_a) and len(units_a) == 8

    def stable(rows):
        return sorted((p["path_index"], p["text"], p["correct"]) for p in rows)

    for uid, rows in paths_a.items():
        assert stable(paths_b[uid]) == stable(rows)
        for sig in cfg.signals:
            assert kept_paths(paths_b[uid], Setting(sig, 14, 2)) == kept_paths(rows, Setting(sig, 14, 2))
