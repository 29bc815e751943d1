"""Held-out prefix scoring on SmolLM2: a trained STOP checkpoint against the Type III baselines and random.

    OMP_NUM_THREADS=1 python benchmarks/smollm2_stop_auroc.py --val runs/smollm2/labels-val \\
        --stop runs/smollm2/stop --out runs/smollm2/stop-auroc.json

AUROC is against the binarised Monte-Carlo label (soft label >= 0.5); "within" is the mean per-problem AUROC
(problems whose prefixes all share one label are skipped), the figure that matters for top-k inside a problem.
With a weak model few prefixes reach a soft label of 0.5, so the script also reports AUROC against the outcome of the
path the prefix was cut from (``path_correct``) and the Spearman correlation with the soft label.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pathprune.stats import auroc, spearman, within_problem_auroc  # noqa: E402
from pathprune.models import load_model  # noqa: E402
from pathprune.stop import load_stop  # noqa: E402
from pathprune.stop.evaluate import baseline_scores  # noqa: E402
from pathprune.stop.labels import read_labels  # noqa: E402
from pathprune.stop.scorer_training import label_metrics  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--val", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    val = read_labels(args.val)
    model, tok = load_model(args.model)
    t0 = time.perf_counter()
    scores = dict(baseline_scores(model, tok, val, batch_size=16))
    rng = random.Random(0)
    scores["random"] = [rng.random() for _ in val]
    module = load_stop(model, args.stop)
    scores["stop"] = module.score_ids([r["prefix_token_ids"] for r in val], tok.pad_token_id, batch_size=16).tolist()
    hard = [int(r["soft_label"] >= 0.5) for r in val]
    path = [int(bool(r.get("path_correct"))) for r in val]
    groups = [r["problem_id"] for r in val]
    rows = {name: {**label_metrics(s, val), "auroc_path": auroc(s, path),
                   "within_auroc_path": within_problem_auroc(s, path, groups),
                   "spearman_soft": spearman(s, [r["soft_label"] for r in val])} for name, s in scores.items()}
    summary = {"val_prefixes": len(val), "val_problems": len({r["problem_id"] for r in val}),
               "positive_share": sum(hard) / len(hard), "seconds": round(time.perf_counter() - t0, 1),
               "metrics": rows}
    print(f"{len(val)} prefixes of {summary['val_problems']} problems, {summary['positive_share']:.2f} with "
          f"soft label >= 0.5")
    cols = ("auroc", "within_auroc", "auroc_path", "within_auroc_path", "spearman_soft")
    print(f"{'signal':<14} " + " ".join(f"{c:>17}" for c in cols))
    for name, r in rows.items():
        print(f"{name:<14} " + " ".join(f"{r[c]:>17.3f}" if r[c] is not None else f"{'n/a':>17}" for c in cols))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
