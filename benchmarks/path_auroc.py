"""Within-problem AUROC of every signal of a `pathprune eval` run against its paths' own final outcomes.

    python benchmarks/path_auroc.py runs/reasoner/eval --out docs/smollm2-reasoner-path-auroc.json

The numbers are :func:`pathprune.evaluation.outcomes.outcome_auroc` at every checkpoint of the run (the eval
report carries the main one): problems whose live paths all end right or all wrong are skipped, paths that ended
before L carry no score, the 95 % interval resamples problems (``--boot`` draws, seed 0), and the prefix ceiling
(runs that recorded token ids) is the best any scorer of the first L tokens could reach.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pathprune.evaluation.outcomes import outcome_auroc  # noqa: E402
from pathprune.evaluation.runs import read_run  # noqa: E402


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
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
