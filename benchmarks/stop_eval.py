"""STOP on the testbed: held-out AUROC against the Type III baselines, the paper's ablations, the n_stop sweep.

    pathprune label --out runs/labels-train-big --testbed-split train --per-level 120    # 20,901 prefixes
    pathprune label --out runs/labels-val --testbed-split validation --per-level 15
    pathprune label --out runs/labels-test --testbed-split test --per-level 15
    python benchmarks/stop_eval.py --train runs/labels-train-big --val runs/labels-val \\
        --test runs/labels-test --lr 1e-3 --weight-decay 0.01 --epochs 6 --max-grad-norm 1.0 \\
        --loss bce+listwise --select within_auroc --work runs/stop-eval-v4 --out docs/stop-eval.json \\
        --ship src/pathprune/stop/checkpoints/testbed --ship-variant "stop --loss bce" \\
        --ship-lp src/pathprune/stop/checkpoints/testbed-lp --ship-lp-variant "stop_lp --loss bce"

The validation labels select each variant's epoch; the table reports the
``--test`` labels (test-split problems that neither training nor selection saw).

Variants: the main STOP, ``stop_lp`` (our extension: the head also reads the
prefix's mean log-probability) with its own loss, soft/hard and adapter ablations,
the paper's loss alone (when ``--loss`` adds our within-problem term), ``--hard-labels``, ``--no-adapter`` and the n_stop sweep
(``--sweep-epochs`` each). ``--variants`` trains a subset (so that several
processes can share the work) and ``--reuse`` loads a variant's checkpoint from
``--work`` instead of retraining when its saved settings match exactly.

Every variant is trained on the same labels, selected on the same validation
prefixes and scored on the same report prefixes (``--test``, else the validation ones). AUROC is against
the binarised Monte-Carlo label (>= 0.5); "within" is the mean per-problem
AUROC, the number that matters for top-k pruning inside a problem. The gain of
STOP over each baseline comes with a 95 % bootstrap interval over problems.
Per error kind (testbed validation problems regenerated from their ids), each
signal's within-problem AUROC at telling clean prefixes from those that already
hold a wrong-strategy word ``S1``, a slip followed by the doubt marker ``?``, or
a silent slip.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
import zlib
from dataclasses import asdict, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pathprune.stats import within_problem_auroc  # noqa: E402
from pathprune.models import load_model  # noqa: E402
from pathprune.stop import StopConfig, load_stop  # noqa: E402
from pathprune.stop.evaluate import baseline_scores, prefix_logprobs  # noqa: E402
from pathprune.stop.labels import read_labels  # noqa: E402
from pathprune.stop.config import read_training  # noqa: E402
from pathprune.stop.module import encode_prefixes  # noqa: E402
from pathprune.stop.train import train_stop  # noqa: E402
from pathprune.stop.scorer_training import TrainConfig, label_metrics  # noqa: E402

KINDS = ("strategy", "slip?", "slip")


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
    if not gains:  # no resample holds a problem with prefixes on both sides of 0.5
        return None, None
    return gains[int(0.025 * len(gains))], gains[int(0.975 * len(gains)) - 1]


def num(x, spec: str) -> str:
    """``x`` formatted, or a dash of the same width where it is undefined (None)."""
    width = spec.split(".")[0].lstrip(">+")
    return format(x, spec) if x is not None else format("-", f">{width}")


def error_kinds(records, tok, split="validation", per_level=15, seed=0):
    """Per prefix: "clean", "strategy" (S1 written), "slip?" / "slip" (a wrong completed step, with / without
    a doubt marker); None when the problem is not a testbed problem of ``split``."""
    from pathprune.testbed.families import FAMILIES
    from pathprune.testbed.problems import suite

    problems = {p.id: p for p in suite(split, per_level, seed)}
    out = []
    for r in records:
        p = problems.get(r["problem_id"])
        if p is None:
            out.append(None)
            continue
        words = tok.convert_ids_to_tokens(r["prefix_token_ids"][r.get("prompt_len", 1):])
        done = len(words) - words[::-1].index(";") if ";" in words else 0  # completed steps only
        a = FAMILIES[p.meta["family"]].analyse(p.meta["spec"], words[:done])
        if words[:1] == ["S1"]:
            out.append("strategy")
        elif a.first_error_step is not None and a.first_error_step < words[:done].count(";"):
            out.append("slip?" if "?" in words else "slip")
        else:
            out.append("clean")
    return out


def kind_auroc(scores, records, kinds, kind):
    """Within-problem AUROC of clean (positive) against ``kind`` prefixes (negative)."""
    keep = [i for i, k in enumerate(kinds) if k in ("clean", kind)]
    return within_problem_auroc([scores[i] for i in keep], [int(kinds[i] == "clean") for i in keep],
                                [records[i]["problem_id"] for i in keep])


def problem_share(records: list[dict], share: float) -> list[int]:
    """Indices of the records of a nested ``share`` of their problems (ordered by a hash of the problem id, so
    25 % is inside 50 %, which is inside 100 %)."""
    problems = sorted({r["problem_id"] for r in records}, key=lambda p: zlib.crc32(str(p).encode()))
    chosen = set(problems[:max(1, round(share * len(problems)))])
    return [i for i, r in enumerate(records) if r["problem_id"] in chosen]


def matches(ckpt: Path, cfg: StopConfig, tcfg: TrainConfig) -> bool:
    """A finished checkpoint in ``ckpt`` trained with exactly these settings (older files: defaults)."""
    f = ckpt / "stop_config.json"
    if not f.is_file() or not (ckpt / "history.json").is_file():  # history.json: training finished
        return False
    raw = json.loads(f.read_text())
    saved = {**asdict(TrainConfig()), **read_training(ckpt).get("train", {})}
    same_model = all(raw.get(k, getattr(StopConfig(), k)) == getattr(cfg, k)
                     for k in ("n_stop", "use_adapter", "rank", "distinct_tokens", "head_features"))
    return same_model and saved == asdict(tcfg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", default="runs/labels-train")
    ap.add_argument("--val", default="runs/labels-val", help="labels that select the epoch")
    ap.add_argument("--test", default=None, help="labels the table reports (default: --val); problems of "
                    "another split, untouched by training and selection")
    ap.add_argument("--test-split", default="test", help="testbed split of --test (for the error kinds)")
    ap.add_argument("--out", default="docs/stop-eval.json")
    ap.add_argument("--work", default="runs/stop-eval")
    ap.add_argument("--ship", default=None, help="copy the --ship-variant checkpoint here")
    ap.add_argument("--ship-variant", default="stop", help="the variant shipped as the signal stop")
    ap.add_argument("--ship-lp", default=None, help="copy the --ship-lp-variant checkpoint here")
    ap.add_argument("--ship-lp-variant", default="stop_lp", help="the variant shipped as the signal stop_lp")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--sweep-epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--loss", default="bce", help="bce (paper) | bce+listwise | bce+pairwise (our extension)")
    ap.add_argument("--rank-weight", type=float, default=1.0)
    ap.add_argument("--select", default="mse", help="mse (official) | within_auroc")
    ap.add_argument("--max-grad-norm", type=float, default=None, help="clip the gradient norm (e.g. 1.0)")
    ap.add_argument("--min-steps", type=int, default=0, help="at least this many optimiser steps per variant")
    ap.add_argument("--label-shares", default="", help="learning curve: variants 'stop --label-share P' trained on "
                    "the training labels of a nested P %% of the training problems (e.g. 25,50)")
    ap.add_argument("--warmup-steps", type=int, default=0, help="linear learning-rate warm-up steps")
    ap.add_argument("--sweep", default="1,2,4,6,8", help="n_stop sweep ('' to skip it)")
    ap.add_argument("--label-ks", default="", help="K study: variants 'stop --label-k K' trained on the first K "
                    "rollouts of each label, e.g. 4,8")
    ap.add_argument("--model", default="testbed", help="the base model STOP attaches to (the labels' generator)")
    ap.add_argument("--variants", default=None, help="comma-separated subset of variant names to train, then stop")
    ap.add_argument("--skip", default="", help="comma-separated variant names left out of the table (not trained)")
    ap.add_argument("--reuse", action="store_true", help="load checkpoints in --work trained with the same settings")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    main_t = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                         loss=args.loss,
                         rank_weight=args.rank_weight, select=args.select, max_grad_norm=args.max_grad_norm,
                         min_steps=args.min_steps, warmup_steps=args.warmup_steps)
    lp = ["mean_logprob"]
    variants = [("stop", StopConfig(), main_t), ("stop_lp", StopConfig(head_features=lp), main_t),
                ("stop_lp --hard-labels", StopConfig(head_features=lp), replace(main_t, hard_labels=True)),
                ("stop_lp --no-adapter", StopConfig(head_features=lp, use_adapter=False), main_t)]
    if args.loss != "bce":
        paper = replace(main_t, loss="bce")
        variants += [("stop --loss bce", StopConfig(), paper),
                     ("stop --loss bce --hard-labels", StopConfig(), replace(paper, hard_labels=True)),
                     ("stop --loss bce --no-adapter", StopConfig(use_adapter=False), paper),
                     ("stop_lp --loss bce", StopConfig(head_features=lp), paper)]
    variants += [("stop --hard-labels", StopConfig(), replace(main_t, hard_labels=True)),
                 ("stop --no-adapter", StopConfig(use_adapter=False), main_t)]
    variants += [(f"stop --label-k {k}", StopConfig(), replace(main_t, label_k=k))
                 for k in map(int, filter(None, args.label_ks.split(",")))]
    variants += [(f"stop --stop-tokens {n}", StopConfig(n_stop=n), replace(main_t, epochs=args.sweep_epochs))
                 for n in map(int, filter(None, args.sweep.split(",")))]
    shares = {f"stop --label-share {p}": int(p) / 100 for p in filter(None, args.label_shares.split(","))}
    variants += [(name, StopConfig(), main_t) for name in shares]
    skipped = [v.strip() for v in args.skip.split(",") if v.strip()]
    wanted = [v.strip() for v in args.variants.split(",")] if args.variants is not None else []
    unknown = set(wanted + skipped) - {name for name, _, _ in variants}
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}")
    if set(skipped) & {args.ship_variant, args.ship_lp_variant}:
        raise SystemExit("--skip cannot leave out the shipped variants (the gains are theirs)")
    variants = [v for v in variants if v[0] not in skipped and (not wanted or v[0] in wanted)]
    train, val = read_labels(args.train), read_labels(args.val)
    report = read_labels(args.test) if args.test else val  # what the table reports
    model, tok = load_model(args.model)
    rows, scores = {}, {}
    print(f"{len(train)} training prefixes, {len(val)} selection prefixes, reporting on {len(report)} prefixes "
          f"({len({r['problem_id'] for r in report})} problems, {'--test' if args.test else '--val'})")
    report_lp = prefix_logprobs(model, tok, report)
    encoded = None  # the base model's prefix caches, encoded once for every variant trained (frozen backbone)
    if args.variants is None:
        for name, s in baseline_scores(model, tok, report).items():
            scores[name] = s
            rows[name] = label_metrics(s, report)
    for name, cfg, tcfg in variants:
        t0 = time.perf_counter()
        out = Path(args.work) / name.replace(" ", "_").replace("-", "")
        if args.reuse and matches(out, cfg, tcfg):
            best = read_training(out)["best"]
            best_epoch, seconds = best["epoch"], best.get("seconds")
        else:
            if encoded is None:
                encoded = tuple(encode_prefixes(model, [r["prefix_token_ids"] for r in recs], tok.pad_token_id)
                                for recs in (train, val))
            fresh, _ = load_model(args.model)  # each variant attaches its own adapter to a fresh base model
            rows_of = problem_share(train, shares.get(name, 1.0))
            trained = train_stop(fresh, tok, [train[i] for i in rows_of], val, cfg, tcfg, out,
                                 encoded=([encoded[0][i] for i in rows_of], encoded[1]))
            (out / "history.json").write_text(json.dumps(trained["history"], indent=1))
            best_epoch, seconds = trained["best"]["epoch"], round(time.perf_counter() - t0, 1)
        module = load_stop(load_model(args.model)[0], out)
        s = module.score_ids([r["prefix_token_ids"] for r in report], tok.pad_token_id,
                             logprobs=report_lp if cfg.head_features else None).tolist()
        scores[name] = s
        rows[name] = {**label_metrics(s, report), "best_epoch": best_epoch, "epochs": tcfg.epochs,
                      "train_seconds": seconds}
        print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in rows[name].items()}, flush=True)
        ship = {args.ship_variant: args.ship, args.ship_lp_variant: args.ship_lp}.get(name)
        if ship:
            shutil.rmtree(ship, ignore_errors=True)
            shutil.copytree(out, ship, ignore=shutil.ignore_patterns("history.json"))
    if args.variants is not None:
        return
    shipped = (args.ship_variant, args.ship_lp_variant)  # the gains are those of the shipped variants
    gains = {f"{a} - {b}": bootstrap_gain(scores[a], scores[b], report) for a in shipped
             for b in ("mean_logprob", "neg_entropy", "conf_mean", "conf_lowest")}
    gains[f"{shipped[1]} - {shipped[0]}"] = bootstrap_gain(scores[shipped[1]], scores[shipped[0]], report)
    print(f"\n{'signal':<24} {'AUROC':>7} {'within':>7} {'MSE':>7} {'Brier':>7} {'ECE':>6}")
    for name, r in rows.items():
        print(f"{name:<24} {num(r['auroc'], '>7.3f')} {num(r['within_auroc'], '>7.3f')} {r['mse']:>7.4f} "
              f"{r['brier']:>7.4f} {r['ece']:>6.3f}")
    for pair, (lo, hi) in gains.items():
        print(f"within-problem AUROC gain {pair}: 95% CI [{num(lo, '+.3f')}, {num(hi, '+.3f')}]")
    kinds = error_kinds(report, tok, *((args.test_split,) if args.test else ()))
    counts = {k: kinds.count(k) for k in ("clean", *KINDS, None)}
    per_kind = {name: {k: kind_auroc(s, report, kinds, k) for k in KINDS} for name, s in scores.items()}
    print(f"\nprefixes by error kind: {counts}; within-problem AUROC, clean vs each kind:")
    print(f"{'signal':<24} " + " ".join(f"{k:>9}" for k in KINDS))
    for name, r in per_kind.items():
        print(f"{name:<24} " + " ".join(f"{v:>9.3f}" if v is not None else f"{'-':>9}" for v in r.values()))
    settings = {k: getattr(args, k) for k in ("model", "label_ks", "label_shares", "epochs", "batch_size",
                                              "sweep_epochs", "lr", "min_steps", "warmup_steps",
                                              "weight_decay", "loss", "rank_weight",
                                              "select", "sweep", "skip", "max_grad_norm", "ship_variant",
                                              "ship_lp_variant")}
    Path(args.out).write_text(json.dumps({"settings": settings, "train_prefixes": len(train),
                                          "selection_prefixes": len(val),
                                          "reported_on": args.test or args.val,
                                          "report_prefixes": len(report),
                                          "report_problems": len({r["problem_id"] for r in report}),
                                          "metrics": rows, "gain_ci": gains,
                                          "error_kinds": {"counts": {str(k): v for k, v in counts.items()},
                                                          "within_auroc_clean_vs_kind": per_kind}}, indent=2))


if __name__ == "__main__":
    main()
