"""Monte-Carlo labelling throughput: in process vs 1 and 2 Ray workers (one torch thread each).

    .venv/bin/python benchmarks/label_scaling.py [--per-level 4] [--workers 1,2]

Each Ray configuration starts its actors first (model loaded); the labelling phase is timed separately
from that start-up. Run it alone: on a shared 2-core machine other processes take the second core.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="7,8")
    ap.add_argument("--per-level", type=int, default=4)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = ap.parse_args()

    import ray

    from pathprune.evaluation.sources import load_problems
    from pathprune.distributed.labelling import LabelWorker
    from pathprune.distributed.ray_executor import RayPool
    from pathprune.models import load_model
    from pathprune.stop.labels import LabelConfig, open_label_log, run_labelling

    cfg = LabelConfig(n_filter=8, k=4, prefix_tokens=(12, 20))
    problems = load_problems(None, "train", args.levels, args.per_level, None, 0)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="pplb-"))

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model, tok = load_model("testbed")
    t1 = time.perf_counter()
    log = run_labelling(model, tok, problems, cfg, work / "inproc", "testbed")
    t2 = time.perf_counter()
    rows.append({"config": "in process, 1 thread", "workers": 1, "startup_s": t1 - t0, "label_s": t2 - t1,
                 "prefixes": len(log.items)})

    ray_tmp = tempfile.mkdtemp(prefix="ppray-", dir="/tmp")
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=ray_tmp,
             configure_logging=False)
    ray_init = time.perf_counter() - t0
    try:
        for w in (int(x) for x in args.workers.split(",")):
            t0 = time.perf_counter()
            with RayPool(partial(LabelWorker, "testbed", cfg), w, threads_per_worker=1) as pool:
                assert pool.wait_ready() == w
                fp = pool.call_one("fingerprint")
                t1 = time.perf_counter()
                log = open_label_log(work / f"ray{w}", "testbed", fp, cfg, problems)
                stats = pool.run([(p.id, p) for p in problems], log)
                t2 = time.perf_counter()
            rows.append({"config": f"Ray, {w} worker{'s' if w > 1 else ''}", "workers": w, "startup_s": t1 - t0,
                         "label_s": t2 - t1, "prefixes": len(log.items), "done": stats.done})
    finally:
        ray.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)

    base = rows[0]["label_s"]
    print(f"{len(problems)} problems (levels {args.levels}, {args.per_level} per family and level), n_filter 8, "
          f"k 4, cuts 12,20; ray.init {ray_init:.1f} s")
    print(f"{'configuration':<24} {'start-up s':>10} {'label s':>8} {'problems/s':>10} {'prefixes/s':>10} "
          f"{'speed-up':>8}")
    for r in rows:
        r["problems_per_s"] = len(problems) / r["label_s"]
        r["speedup"] = base / r["label_s"]
        print(f"{r['config']:<24} {r['startup_s']:>10.1f} {r['label_s']:>8.1f} {r['problems_per_s']:>10.2f} "
              f"{r['prefixes'] / r['label_s']:>10.1f} {r['speedup']:>7.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"ray_init_s": ray_init, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
