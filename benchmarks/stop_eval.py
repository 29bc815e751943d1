"""STOP on the testbed: held-out AUROC against the Type III baselines, the paper's ablations, the n_stop sweep.

    pathprune label --out runs/labels-train --testbed-split train --per-level 40
    pathprune label --out runs/labels-val --testbed-split validation --per-level 15
    python benchmarks/stop_eval.py --train runs/labels-train --val runs/labels-val \\
        --out docs/stop-eval.json --ship src/pathprune/stop/checkpoints/testbed

Every variant is trained on the same labels and scored on the same held-out
prefixes (validation-split problems, never seen in training). AUROC is against
the binarised Monte-Carlo label (>= 0.5); "within" is the mean per-problem
AUROC, the number that matters for top-k pruning inside a problem. The gain of
STOP over each baseline comes with a 95 % bootstrap interval over problems.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pathprune.evaluation.metrics import within_problem_auroc  # noqa: E402
from pathprune.models import load_model  # noqa: E402
from pathprune.stop import StopConfig, load_stop  # noqa: E402
from pathprune.stop.evaluate import baseline_scores  # noqa: E402
from pathprune.stop.labels import read_labels  # noqa: E402
from pathprune.stop.train import TrainStopConfig, label_metrics, train_stop  # noqa: E402


def bootstrap_gain(a, b, records, n_boot=1000, seed=0):
    """95 % interval of within-problem AUROC(a) - AUROC(b), resampling problems."""
    hard = [int(r["soft_label"] >= 0.5) for r in records]
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r["problem_id"], []).append(i)
    keys, rng, gains = list(groups), random.Random(seed), []
    for _ in range(n_boot):
        idx, gid = [], []
        for j, k in enumerate(rng.choices(keys, k=len(keys))):
            idx += groups[k]
            gid += [j] * len(groups[k])
        wa = within_problem_auroc([a[i] for i in idx], [hard[i] for i in idx], gid)
        wb = within_problem_auroc([b[i] for i in idx], [hard[i] for i in idx], gid)
        if wa is not None and wb is not None:
            gains.append(wa - wb)
    gains.sort()
    return gains[int(0.025 * len(gains))], gains[int(0.975 * len(gains)) - 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", default="runs/labels-train")
    ap.add_argument("--val", default="runs/labels-val")
    ap.add_argument("--out", default="docs/stop-eval.json")
    ap.add_argument("--work", default="runs/stop-eval")
    ap.add_argument("--ship", default=None, help="copy the main variant's checkpoint here")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--sweep-epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--sweep", default="1,2,4,6,8")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train, val = read_labels(args.train), read_labels(args.val)
    model, tok = load_model("testbed")
    rows, scores = {}, {}
    print(f"{len(train)} training prefixes, {len(val)} held-out prefixes "
          f"({len({r['problem_id'] for r in val})} problems)")
    for name, s in baseline_scores(model, tok, val).items():
        scores[name] = s
        rows[name] = label_metrics(s, val)
    variants = [("stop", StopConfig(), TrainStopConfig(epochs=args.epochs, lr=args.lr)),
                ("stop --hard-labels", StopConfig(), TrainStopConfig(epochs=args.epochs, lr=args.lr, hard_labels=True)),
                ("stop --no-adapter", StopConfig(use_adapter=False), TrainStopConfig(epochs=args.epochs, lr=args.lr))]
    variants += [(f"stop --stop-tokens {n}", StopConfig(n_stop=n), TrainStopConfig(epochs=args.sweep_epochs, lr=args.lr))
                 for n in map(int, args.sweep.split(","))]
    for name, cfg, tcfg in variants:
        t0 = time.perf_counter()
        fresh, _ = load_model("testbed")  # each variant attaches its own adapter to a fresh base model
        out = Path(args.work) / name.replace(" ", "_").replace("-", "")
        report = train_stop(fresh, tok, train, val, cfg, tcfg, out)
        module = load_stop(load_model("testbed")[0], out)
        s = module.score_ids([r["prefix_token_ids"] for r in val], tok.pad_token_id).tolist()
        scores[name] = s
        rows[name] = {**label_metrics(s, val), "best_epoch": report["best"]["epoch"],
                      "train_seconds": round(time.perf_counter() - t0, 1)}
        print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in rows[name].items()}, flush=True)
        if name == "stop" and args.ship:
            shutil.rmtree(args.ship, ignore_errors=True)
            shutil.copytree(out, args.ship)
    gains = {b: bootstrap_gain(scores["stop"], scores[b], val) for b in ("mean_logprob", "neg_entropy",
                                                                         "conf_mean", "conf_lowest")}
    print(f"\n{'signal':<24} {'AUROC':>7} {'within':>7} {'MSE':>7} {'Brier':>7} {'ECE':>6}")
    for name, r in rows.items():
        print(f"{name:<24} {r['auroc']:>7.3f} {r['within_auroc']:>7.3f} {r['mse']:>7.4f} {r['brier']:>7.4f} "
              f"{r['ece']:>6.3f}")
    for b, (lo, hi) in gains.items():
        print(f"within-problem AUROC gain of stop over {b}: 95% CI [{lo:+.3f}, {hi:+.3f}]")
    Path(args.out).write_text(json.dumps({"train_prefixes": len(train), "val_prefixes": len(val),
                                          "metrics": rows, "gain_ci": gains}, indent=2))


if __name__ == "__main__":
    main()
