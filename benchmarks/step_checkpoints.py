"""Step checkpoints against fixed token counts, read off one `pathprune eval` run (issue #26).

    .venv-vllm/bin/pathprune eval --out runs/steps/eval-reasoner --model smollm2-135m-reasoner \
        --benchmark reasoner:3,4,5 --testbed-split test --per-level 60 --n 16 \
        --prefix-tokens 48,24,64,72,step1/64,step2/96,step3/128 --keep 4,2,8 --temperature 0.7 \
        --max-new-tokens 192 --problems-per-batch 8 --signals random,mean_logprob,conf_lowest,neg_entropy \
        --backend vllm
    python benchmarks/step_checkpoints.py runs/steps/eval-reasoner --out docs/step-checkpoints-reasoner.json \
        --figure docs/step_checkpoints_reasoner.png

Every checkpoint of the run scored the same launched paths, so fixed L and steps are compared on identical
paths. Per checkpoint: its kind, the mean prefix length of the paths live there (a step checkpoint's own
lengths), then per signal: within-problem AUROC against the paths' outcomes (95 % interval over problems),
the prefix ceiling, and for each k: avg@k|N, the mean tokens per problem and Δ cons@k against plain
self-consistency at those tokens (95 % interval, paired by problem). The figure plots cons@k against tokens
per problem for one signal, one curve per checkpoint (fixed L dashed, steps solid), self-consistency in black.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pathprune.engine.schedule import parse_checkpoint  # noqa: E402
from pathprune.evaluation.offline import checked_length  # noqa: E402
from pathprune.evaluation.outcomes import CEILING, outcome_auroc  # noqa: E402
from pathprune.evaluation.runs import read_run  # noqa: E402


def checkpoint_rows(run: Path, boot: int) -> tuple[list[dict], list[dict]]:
    cfg, units, paths = read_run(run)
    summary = json.loads((run / "summary.json").read_text())
    by_label = {r["label"]: r for r in summary["rows"]}
    rows = []
    for cp in cfg.prefixes:
        live = [p for u in units for p in paths[u["unit_id"]] if p["signals"][cfg.signals[0]].get(str(cp))]
        lengths = [checked_length(p, cp) for p in live]
        length, steps = parse_checkpoint(str(cp))
        aurocs = {r["signal"]: r for r in outcome_auroc(units, paths, list(cfg.signals), cp, n_boot=boot)}
        base = {"checkpoint": str(cp), "kind": "fixed" if steps is None else "step",
                "mean_prefix_tokens": round(sum(lengths) / len(lengths), 1) if lengths else None,
                "capped": round(sum(n == length for n in lengths) / len(lengths), 3) if steps and lengths else None,
                "live_paths": len(live), "ceiling": aurocs.get(CEILING, {}).get("within_auroc")}
        for s in cfg.signals:
            row = {**base, "signal": s, "within_auroc": aurocs[s]["within_auroc"], "auroc_ci": aurocs[s]["ci95"]}
            for k in cfg.keeps:
                r = by_label[f"{s} @{cp}:{k}"]
                row[f"k{k}"] = {"avg": r["avg"], "cons": r["cons"], "tokens": r["tokens"],
                                "d_cons_vs_sc": r["vs_sc"]["gain"], "d_cons_ci": r["vs_sc"]["gain_ci"]}
            rows.append(row)
    return rows, summary["self_consistency"]


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def print_table(rows: list[dict], keeps: list[int]) -> None:
    head = ["checkpoint", "prefix tok", "signal", "AUROC [95 % CI]", "ceiling"]
    head += [f"k={k}: avg · tokens · Δcons vs SC [CI]" for k in keeps]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [r["checkpoint"], f"{r['mean_prefix_tokens']}", r["signal"],
                 f"{r['within_auroc']:.3f} [{r['auroc_ci'][0]:.3f}, {r['auroc_ci'][1]:.3f}]"
                 if r["within_auroc"] is not None else "–",
                 f"{r['ceiling']:.3f}" if r["ceiling"] is not None else "–"]
        for k in keeps:
            v = r[f"k{k}"]
            cells.append(f"{pct(v['avg'])} · {v['tokens']:.0f} · {100 * v['d_cons_vs_sc']:+.1f} "
                         f"[{100 * v['d_cons_ci'][0]:+.1f}, {100 * v['d_cons_ci'][1]:+.1f}]")
        print("| " + " | ".join(cells) + " |")


def figure(rows: list[dict], sc: list[dict], signal: str, keeps: list[int], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    ax.plot([r["tokens"] for r in sc], [100 * r["cons"] for r in sc], color="black", lw=1.5,
            label="self-consistency, n = 1..N")
    for r in (r for r in rows if r["signal"] == signal):
        pts = sorted((r[f"k{k}"] for k in keeps), key=lambda v: v["tokens"])
        ax.plot([v["tokens"] for v in pts], [100 * v["cons"] for v in pts], marker="o" if r["kind"] == "step" else "s",
                ls="-" if r["kind"] == "step" else "--", lw=1, label=f"{r['checkpoint']} ({r['mean_prefix_tokens']} tok)")
    ax.set_xlabel("generated tokens per problem")
    ax.set_ylabel("cons@k (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument("--signal", default="mean_logprob", help="Signal of the figure.")
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--show", default=None, help="Signals in the printed table (default: all).")
    args = ap.parse_args()
    cfg, _, _ = read_run(args.run)
    rows, sc = checkpoint_rows(args.run, args.boot)
    shown = set(args.show.split(",")) if args.show else set(cfg.signals)
    order = sorted(rows, key=lambda r: (r["mean_prefix_tokens"] or 0, r["kind"]))  # matched lengths side by side
    print_table([r for r in order if r["signal"] in shown], list(cfg.keeps))
    if args.out:
        args.out.write_text(json.dumps({"run": cfg.__dict__, "rows": rows}, indent=1) + "\n")
    if args.figure:
        figure(rows, sc, args.signal, list(cfg.keeps), args.figure,
               f"{cfg.model}: {args.signal}, N = {cfg.n} → k ∈ {sorted(cfg.keeps)}")


if __name__ == "__main__":
    main()
