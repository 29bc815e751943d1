"""Within-problem AUROC of every signal of a `pathprune eval` run against its paths' own final outcomes.

    python benchmarks/path_auroc.py runs/reasoner/eval --out docs/smollm2-reasoner-path-auroc.json

An eval run scores every launched path at each checkpoint L and then finishes it, so each score can be set
against whether that path ended right: the question top-k pruning asks inside one problem. Problems whose
paths all end right or all wrong are skipped (their AUROC is undefined); paths that ended before L carry no
score at L and are left out. The 95 % interval resamples problems (1,000 draws, seed 0).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pathprune.stats import within_problem_auroc  # noqa: E402


def per_problem(paths: list[dict], signal: str, cut: str) -> dict[str, tuple[list[float], list[int]]]:
    out: dict[str, tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
    for p in paths:
        entry = p["signals"].get(signal, {}).get(cut)
        if entry is not None:
            out[p["unit_id"]][0].append(entry[0])
            out[p["unit_id"]][1].append(int(p["correct"]))
    return out


def within(groups: dict, keys: list[str]) -> float | None:
    scores, labels, ids = [], [], []
    for j, k in enumerate(keys):
        s, y = groups[k]
        scores += s
        labels += y
        ids += [j] * len(s)
    return within_problem_auroc(scores, labels, ids)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--boot", type=int, default=1000)
    args = ap.parse_args()
    if not (args.run / "paths.jsonl").is_file():
        raise SystemExit(f"{args.run}: no paths.jsonl (expected a `pathprune eval` run directory)")
    paths = [json.loads(line) for line in (args.run / "paths.jsonl").read_text().splitlines() if line.strip()]
    if not paths:
        raise SystemExit(f"{args.run}/paths.jsonl holds no paths")
    signals = list(paths[0]["signals"])
    cuts = sorted({c for p in paths for s in p["signals"].values() for c in s}, key=int)
    rows = []
    for cut in cuts:
        for signal in signals:
            groups = per_problem(paths, signal, cut)
            keys = [k for k, (_, y) in groups.items() if 0 < sum(y) < len(y)]
            rng = random.Random(0)
            draws = sorted(v for v in (within(groups, rng.choices(keys, k=len(keys))) for _ in range(args.boot))
                           if v is not None)
            rows.append({"signal": signal, "prefix": int(cut), "problems": len(keys),
                         "within_auroc": within(groups, keys),
                         "ci95": [draws[int(0.025 * len(draws))], draws[int(0.975 * len(draws)) - 1]]})
            r = rows[-1]
            print(f"L={cut:>4} {signal:<44} within-problem AUROC {r['within_auroc']:.3f} "
                  f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] over {r['problems']} problems")
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
