"""Statistics of a Monte-Carlo labelling run, and what fewer rollouts per prefix would have given.

    python benchmarks/label_stats.py runs/reasoner/labels-train [runs/reasoner/labels-validation ...] \\
        --ks 1,4,8 --out docs/smollm2-label-stats.json

Per run: problems labelled and kept by the difficulty filter, prefixes (distinct prefixes at each cut; paths
that share their first L tokens share one label), the soft labels' spread, and the problems whose prefixes
disagree (some binarised label >= 0.5 and some below: the only ones where a within-problem ranking can be
right or wrong). For each K in ``--ks``: the soft label from each prefix's first K rollouts against the full
label, as the mean absolute difference, the share of prefixes whose binarised label flips, and the Spearman
correlation (label noise is the cost side of the K study in docs/smollm2.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pathprune.errors import PathpruneError  # noqa: E402
from pathprune.stats import spearman  # noqa: E402
from pathprune.stop.labels import read_labels  # noqa: E402


def stats(run: Path, ks: list[int]) -> dict:
    recs = read_labels(run)
    if not recs or not (run / "problems.jsonl").is_file():
        raise SystemExit(f"{run}: no labels or no problems.jsonl (expected a `pathprune label` run directory)")
    units = [json.loads(line) for line in (run / "problems.jsonl").read_text().splitlines() if line.strip()]
    by_problem: dict[str, list[dict]] = defaultdict(list)
    for r in recs:
        by_problem[r["problem_id"]].append(r)
    labels = [r["soft_label"] for r in recs]
    k_full = min(len(r["outcomes"]) for r in recs)
    out = {
        "run": str(run), "problems": len(units), "kept": sum(u["kept"] for u in units),
        "prefixes": len(recs), "rollouts_per_prefix": k_full,
        "prefixes_per_kept_problem": round(len(recs) / max(1, len(by_problem)), 2),
        "mean_soft_label": round(sum(labels) / len(labels), 3),
        "soft_label_histogram": {f"{lo / 4:.2f}-{(lo + 1) / 4:.2f}": sum(lo / 4 <= x < (lo + 1) / 4 or (lo == 3 and x == 1)
                                                                          for x in labels) for lo in range(4)},
        "share_label_ge_half": round(sum(x >= 0.5 for x in labels) / len(labels), 3),
        "problems_with_two_or_more_prefixes": sum(len(v) >= 2 for v in by_problem.values()),
        "problems_with_disagreeing_prefixes": sum(len({x["soft_label"] >= 0.5 for x in v}) == 2
                                                 for v in by_problem.values()),
        "path_correct_share": round(sum(bool(r.get("path_correct")) for r in recs) / len(recs), 3),
        "by_k": {},
    }
    for k in ks:
        if k > k_full:
            continue
        short = [sum(r["outcomes"][:k]) / k for r in recs]
        out["by_k"][str(k)] = {
            "mean_abs_diff": round(sum(abs(a - b) for a, b in zip(short, labels)) / len(labels), 4),
            "binarised_flips": round(sum((a >= 0.5) != (b >= 0.5) for a, b in zip(short, labels)) / len(labels), 4),
            "spearman": None if (s := spearman(short, labels)) is None else round(s, 4),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--ks", default="1,4,8")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",") if k]
    try:
        result = [stats(run, ks) for run in args.runs]
    except PathpruneError as err:
        raise SystemExit(str(err)) from None
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
