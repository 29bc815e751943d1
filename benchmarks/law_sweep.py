"""γ sweeps on an evaluation run → ``law_points.jsonl`` for ``pathprune law fit``.

Usage::

    pathprune eval --out runs/law-eval --levels 6,8,10 --per-level 12 --signals mean_logprob \
        --n 64 --prefix 8,12,16 --keep 4
    python benchmarks/law_sweep.py runs/law-eval runs/law-sweep --budgets 128,192,288,432,640
    pathprune law fit runs/law-sweep --out runs/law-sweep/law.json

The eval run launches a pool of N paths per problem and scores them at every checkpoint L. For each
task (testbed family × difficulty; L_task = its mean complete-path length), checkpoint L, budget C and
γ on a grid, the budget buys N = C / (L + γ·(L_task − L)) paths (``paths_for_budget``) and keeps
k = round(γN): we draw N of the pool's paths at random (``--reps`` draws, the same draws for every γ),
keep the k best-scored live paths at L plus any that ended before L, vote, and average the vote's
correctness. γ* is the γ with the best accuracy (``envelope_points``). Budgets for which some γ would
need more paths than the pool holds are skipped, so that every γ* is chosen from the whole grid.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from pathprune.evaluation.law import LawPoint, envelope_points, keep_for, paths_for_budget, point_record
from pathprune.evaluation.offline import Setting, outcome
from pathprune.evaluation.runs import read_run

GAMMAS = (1 / 2, 1 / 3, 1 / 4, 1 / 6, 1 / 8, 1 / 12, 1 / 16)


def vote_correct(unit: dict, paths: list[dict], signal: str, prefix: int, keep: int) -> bool:
    return outcome(unit, paths, Setting(signal, prefix, keep)).vote_correct


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--signal", default="mean_logprob")
    ap.add_argument("--budgets", default="128,192,288,432,640", help="Budgets C in tokens, comma-separated.")
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    cfg, units, paths = read_run(args.run_dir)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for u in units:
        groups[(u["meta"].get("family"), u["meta"].get("difficulty"))].append(u)
    budgets = [float(x) for x in args.budgets.split(",")]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for (family, level), us in sorted(groups.items()):
        pool = min(len(paths[u["unit_id"]]) for u in us)
        task = sum(p["tokens"] for u in us for p in paths[u["unit_id"]]) / sum(len(paths[u["unit_id"]]) for u in us)
        rng = random.Random(f"{args.seed}-{family}-{level}")
        draws = [{u["unit_id"]: rng.sample(range(pool), pool) for u in us} for _ in range(args.reps)]
        for prefix in cfg.prefixes:
            for budget in budgets:
                ns = {g: paths_for_budget(budget, prefix, task, g) for g in GAMMAS}
                if max(ns.values()) > pool:
                    continue
                for g in GAMMAS:
                    n, k = ns[g], keep_for(ns[g], g)
                    hits = 0
                    for draw in draws:
                        for u in us:
                            ps = paths[u["unit_id"]]
                            hits += vote_correct(u, [ps[i] for i in draw[u["unit_id"]][:n]], args.signal, prefix, k)
                    records.append({"budget_tokens": budget, "prefix_tokens": prefix, "task_tokens": task,
                                    "gamma": g, "n_paths": n, "keep": k, "accuracy": hits / (args.reps * len(us)),
                                    "task": f"testbed-{family}-d{level}", "signal": args.signal})
    with (out / "sweep.jsonl").open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    tasks = {(r["budget_tokens"], r["prefix_tokens"], r["task_tokens"]): r["task"] for r in records}
    points: list[LawPoint] = envelope_points(records)
    with (out / "law_points.jsonl").open("w") as f:
        for p in points:
            f.write(json.dumps(point_record(p, task=tasks[(p.budget_tokens, p.prefix_tokens, p.task_tokens)],
                                            signal=args.signal)) + "\n")
    print(f"{len(records)} sweep records, {len(points)} points -> {out / 'law_points.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
