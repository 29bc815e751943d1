"""Which answer format does SmolLM2-135M-Instruct follow better on the word problems: \\boxed{} or "Final answer:"?

    OMP_NUM_THREADS=1 python benchmarks/smollm2_format.py --per-level 8 --levels 1,2 --samples 6 \\
        --out runs/smollm2/format.json

Samples the same validation-split problems under both instructions (same seeds) and reports, per format: the share
of paths with an extractable answer, the share of paths that used the requested format, pass@1, the mean
generated length, and the share that hit the token limit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pathprune.engine import SamplingParams, encode_prompt, sample  # noqa: E402
from pathprune.models import load_model  # noqa: E402
from pathprune.tasks.answers import final_answer_line, last_boxed  # noqa: E402
from pathprune.tasks.grading import grade  # noqa: E402
from pathprune.tasks.wordproblems import FORMATS, suite  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--levels", default="1,2")
    ap.add_argument("--per-level", type=int, default=8)
    ap.add_argument("--samples", type=int, default=6)
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    levels = tuple(int(x) for x in args.levels.split(","))
    model, tok = load_model(args.model)
    result = {}
    for fmt in FORMATS:
        problems = suite("validation", args.per_level, 0, levels, fmt=fmt)
        params = SamplingParams(n=args.samples, temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                                seed=0)
        t0, rows = time.time(), []
        for start in range(0, len(problems), 4):
            chunk = problems[start:start + 4]
            outs = sample(model, tok, [encode_prompt(tok, p.input) for p in chunk], params)
            for p, paths in zip(chunk, outs):
                for ids in paths:
                    text = tok.decode(ids, skip_special_tokens=True)
                    answer, correct = grade(p, text)
                    used = (last_boxed(text) is not None) if fmt == "boxed" else (final_answer_line(text) is not None)
                    rows.append({"level": p.meta["difficulty"], "answered": answer is not None, "followed": used,
                                 "correct": correct, "tokens": len(ids), "truncated": len(ids) >= args.max_new_tokens})
        secs = time.time() - t0
        n = len(rows)
        summary = {k: sum(r[k] for r in rows) / n for k in ("answered", "followed", "correct", "truncated")}
        summary["mean_tokens"] = sum(r["tokens"] for r in rows) / n
        summary["by_level"] = {lv: sum(r["correct"] for r in rows if r["level"] == lv)
                               / max(1, sum(r["level"] == lv for r in rows)) for lv in levels}
        summary.update(paths=n, seconds=round(secs, 1), tokens_per_s=round(sum(r["tokens"] for r in rows) / secs, 1))
        result[fmt] = summary
        print(fmt, json.dumps(summary), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "formats": result},
                                       indent=2) + "\n")


if __name__ == "__main__":
    main()
