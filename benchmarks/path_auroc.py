"""Within-problem AUROC of every signal of a `pathprune eval` run against its paths' own final outcomes.

    python benchmarks/path_auroc.py runs/reasoner/eval --out docs/smollm2-reasoner-path-auroc.json

The numbers are :func:`pathprune.evaluation.outcomes.outcome_auroc` at every checkpoint of the run (the eval
report carries the main one): problems whose live paths all end right or all wrong are skipped, paths that ended
before L carry no score, the 95 % interval resamples problems (``--boot`` draws, seed 0), and the prefix ceiling
(runs that recorded token ids) is the best any scorer of the first L tokens could reach. With token ids it also
prints how often paths end right in each problem's most common prefix and in its other prefixes: a prefix scorer
keeps whole groups, so this says what a scorer at chance loses against random pruning.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pathprune.evaluation.outcomes import live_prefixes, outcome_auroc  # noqa: E402
from pathprune.evaluation.runs import read_run  # noqa: E402


def prefix_groups(units: list[dict], paths: dict[str, list[dict]], prefix: int | str, live_signal: str) -> dict | None:
    """Right-outcome share of the live paths (those ``live_signal`` scored at ``prefix``, as for the ceiling) in
    each problem's most common first-``prefix``-tokens group (ties: the first path's) and in its other groups;
    None when the run recorded no token ids."""
    tally = {"common": [0, 0], "other": [0, 0]}  # [right, paths]
    n_groups = []
    for u in units:
        if (seen := live_prefixes(paths[u["unit_id"]], prefix, live_signal)) is None:
            return None
        live, keys = seen
        if not keys:
            continue
        top = Counter(keys).most_common(1)[0][0]
        n_groups.append(len(set(keys)))
        for key, p in zip(keys, live):
            t = tally["common" if key == top else "other"]
            t[0] += int(p["correct"])
            t[1] += 1
    return {"prefix": prefix, "prefixes_per_problem": sum(n_groups) / max(len(n_groups), 1),
            **{f"{k}_paths": n for k, (_, n) in tally.items()},
            **{f"{k}_right": r / n if n else None for k, (r, n) in tally.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--boot", type=int, default=1000)
    args = ap.parse_args()
    cfg, units, paths = read_run(args.run)
    rows = [r for L in cfg.prefixes for r in outcome_auroc(units, paths, list(cfg.signals), L, n_boot=args.boot)]
    for r in rows:
        a, (lo, hi) = r["within_auroc"], r["ci95"]
        text = "–" if a is None else f"{a:.3f} [{lo:.3f}, {hi:.3f}]"
        print(f"L={r['prefix']:>4} {r['signal']:<44} within-problem AUROC {text} over {r['problems']} problems")
    groups = [g for L in cfg.prefixes if (g := prefix_groups(units, paths, L, cfg.signals[0])) is not None]
    for g in groups:
        print(f"L={g['prefix']:>4} {g['prefixes_per_problem']:.1f} prefixes per problem; right: "
              f"{100 * (g['common_right'] or 0):.0f} % of {g['common_paths']} paths in its most common prefix, "
              f"{100 * (g['other_right'] or 0):.0f} % of {g['other_paths']} in the others")
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "rows": rows, "prefix_groups": groups}, indent=1) + "\n")


if __name__ == "__main__":
    main()
