"""Accuracy of the SmolLM2 reasoner on held-out `reasoner` problems, by level, and the kinds of errors it makes.

    OMP_NUM_THREADS=1 python benchmarks/reasoner_eval.py --model smollm2-135m-reasoner --levels 1,2,3,4,5,6 \\
        --per-level 30 --samples 4 --work runs/reasoner-eval --out docs/smollm2-reasoner-eval.json
    OMP_NUM_THREADS=1 python benchmarks/reasoner_eval.py --model smollm2-135m --levels 1,2 --per-level 30 \\
        --samples 0 --work runs/reasoner-eval-base --out runs/reasoner-eval-base.json       # the base model

For each level: ``--per-level`` test-split problems (disjoint from the training problems by construction), one
greedy path and ``--samples`` paths at T = ``--temperature`` each. It reports greedy pass@1 with a 95 % Wilson
interval, sampled pass@1 (mean over paths) with a 95 % bootstrap interval over problems, the share of paths with a
final answer and that hit the token limit, and every wrong path's first error read against the problem's spec
(:func:`pathprune.tasks.reasoner_errors.classify`): an arithmetic slip, a plan error (wrong operation, wrong quantity
carried, a number not in the problem, a step skipped, stopped early, a step added, another final answer) or no
final answer. Paths are appended to ``WORK/paths.jsonl`` as they finish, so a rerun continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pathprune.engine import SamplingParams, encode_prompt, sample  # noqa: E402
from pathprune.tasks.grading import grade  # noqa: E402
from pathprune.tasks.reasoner import suite  # noqa: E402
from pathprune.tasks.reasoner_errors import classify  # noqa: E402


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    if n == 0:
        return [0.0, 0.0]
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [round(100 * max(0.0, c - h), 1), round(100 * min(1.0, c + h), 1)]


def bootstrap(per_problem: list[float], reps: int = 2000, seed: int = 0) -> list[float]:
    if not per_problem:
        return [0.0, 0.0]
    rng = random.Random(seed)
    n = len(per_problem)
    means = sorted(sum(rng.choice(per_problem) for _ in range(n)) / n for _ in range(reps))
    return [round(100 * means[int(0.025 * reps)], 1), round(100 * means[int(0.975 * reps) - 1], 1)]


def run_paths(args, model, tok, problems, mode: str, done: set, sink) -> None:
    n = 1 if mode == "greedy" else args.samples
    params = SamplingParams(n=n, temperature=0.0 if mode == "greedy" else args.temperature,
                            max_new_tokens=args.max_new_tokens, seed=args.seed)
    todo = [p for p in problems if (p.id, mode) not in done]
    chunk = max(1, args.rows // n)
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        t0 = time.time()
        outs = sample(model, tok, [encode_prompt(tok, p.input) for p in part], params)
        secs = time.time() - t0
        tokens = sum(len(ids) for paths in outs for ids in paths)
        for p, paths in zip(part, outs):
            for i, ids in enumerate(paths):
                text = tok.decode(ids, skip_special_tokens=True)
                answer, correct = grade(p, text)
                error = classify(p.meta["spec"], text, answer)
                sink.write(json.dumps({"id": p.id, "level": p.meta["difficulty"], "mode": mode, "path": i,
                                       "correct": bool(correct), "answer": answer, "tokens": len(ids),
                                       "truncated": len(ids) >= args.max_new_tokens, "error": error,
                                       "text": text}) + "\n")
            done.add((p.id, mode))
        sink.flush()
        print(f"{mode} level {part[0].meta['difficulty']}: {start + len(part)}/{len(todo)} problems, "
              f"{tokens} tokens in {secs:.0f} s ({tokens / secs:.0f} tok/s)", flush=True)


def summarise(rows: list[dict], problems, args) -> dict:
    spec_of = {p.id: p for p in problems}
    out = {}
    for level in sorted({p.meta["difficulty"] for p in problems}):
        ids = [p.id for p in problems if p.meta["difficulty"] == level]
        entry = {"problems": len(ids)}
        for mode in ("greedy", "sampled"):
            mine = [r for r in rows if r["level"] == level and r["mode"] == mode and r["id"] in spec_of]
            if not mine:
                continue
            per = {}
            for r in mine:
                per.setdefault(r["id"], []).append(r["correct"])
            per_problem = [sum(v) / len(v) for v in per.values()]
            right = sum(r["correct"] for r in mine)
            wrong = [r for r in mine if not r["correct"]]
            kinds = Counter(r["error"]["kind"] for r in wrong)
            details = Counter(r["error"]["detail"] for r in wrong if r["error"]["kind"] == "plan")
            entry[mode] = {
                "paths": len(mine), "pass@1": round(100 * right / len(mine), 1),
                "ci95": wilson(right, len(mine)) if mode == "greedy" else bootstrap(per_problem),
                "answered": round(100 * sum(r["answer"] is not None for r in mine) / len(mine), 1),
                "truncated": round(100 * sum(r["truncated"] for r in mine) / len(mine), 1),
                "mean_tokens": round(sum(r["tokens"] for r in mine) / len(mine), 1),
                "errors": {k: kinds.get(k, 0) for k in ("arithmetic", "plan", "no_answer")},
                "plan_errors": dict(details.most_common()),
                "plan_with_slip": sum(r["error"]["kind"] == "plan" and r["error"]["slip"] for r in wrong),
            }
            if mode == "sampled":
                entry[mode]["any_right"] = round(100 * sum(v > 0 for v in per_problem) / len(per_problem), 1)
                entry[mode]["all_right"] = round(100 * sum(v == 1 for v in per_problem) / len(per_problem), 1)
        out[str(level)] = entry
    return out


def overall(rows: list[dict], spec: dict) -> dict:
    """Error kinds over all levels, per mode: counts and shares of the wrong paths."""
    out = {}
    for mode in ("greedy", "sampled"):
        wrong = [r for r in rows if r["mode"] == mode and r["id"] in spec and not r["correct"]]
        if not wrong:
            continue
        kinds = Counter(r["error"]["kind"] for r in wrong)
        details = Counter(r["error"]["detail"] for r in wrong if r["error"]["kind"] == "plan")
        out[mode] = {"wrong_paths": len(wrong),
                     "kinds": {k: [kinds.get(k, 0), round(100 * kinds.get(k, 0) / len(wrong), 1)]
                               for k in ("arithmetic", "plan", "no_answer")},
                     "plan_details": {k: [v, round(100 * v / len(wrong), 1)] for k, v in details.most_common()},
                     "plan_with_slip": sum(r["error"]["kind"] == "plan" and r["error"]["slip"] for r in wrong)}
    return out


def examples(rows: list[dict], problems) -> list[dict]:
    """The first wrong greedy path of each error kind (plan errors by detail), with its question."""
    question = {p.id: p.meta["question"] for p in problems}
    answer = {p.id: p.answer for p in problems}
    seen, out = set(), []
    for r in sorted(rows, key=lambda r: (r["mode"] != "greedy", r["level"], r["id"], r["path"])):
        if r["correct"]:
            continue
        key = r["error"]["detail"] if r["error"]["kind"] == "plan" else r["error"]["kind"]
        if key in seen or r["id"] not in question:
            continue
        seen.add(key)
        out.append({"kind": r["error"]["kind"], "detail": r["error"]["detail"], "mode": r["mode"],
                    "level": r["level"], "question": question[r["id"]], "reference": answer[r["id"]],
                    "output": r["text"][:600]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-reasoner")
    ap.add_argument("--levels", default="1,2,3,4,5,6")
    ap.add_argument("--per-level", type=int, default=30)
    ap.add_argument("--samples", type=int, default=4, help="sampled paths per problem (0: greedy only)")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=int, default=32, help="paths decoded together")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, required=True, help="folder for paths.jsonl (resumable)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from pathprune.models import load_model

    torch.set_num_threads(args.threads)
    levels = tuple(int(x) for x in args.levels.split(","))
    problems = suite(args.split, args.per_level, args.seed, levels)
    args.work.mkdir(parents=True, exist_ok=True)
    config = {k: str(v) for k, v in vars(args).items() if k not in ("work", "out", "threads", "rows")}
    cfg_file = args.work / "config.json"
    if cfg_file.is_file() and json.loads(cfg_file.read_text()) != config:
        sys.exit(f"{args.work} holds another configuration ({cfg_file}); use a new --work")
    cfg_file.write_text(json.dumps(config, indent=2) + "\n")
    paths_file = args.work / "paths.jsonl"
    rows = [json.loads(line) for line in paths_file.read_text().splitlines()] if paths_file.is_file() else []
    done = {(r["id"], r["mode"]) for r in rows}
    t0 = time.time()
    model, tok = load_model(args.model, progress=print)
    with paths_file.open("a") as sink:
        for level in levels:
            mine = [p for p in problems if p.meta["difficulty"] == level]
            run_paths(args, model, tok, mine, "greedy", done, sink)
            if args.samples:
                run_paths(args, model, tok, mine, "sampled", done, sink)
    rows = [json.loads(line) for line in paths_file.read_text().splitlines()]
    spec = {p.id: p.meta["spec"] for p in problems}
    for r in rows:  # classified again from the text, so a refined classifier needs no new paths
        if r["id"] in spec:
            r["error"] = classify(spec[r["id"]], r["text"], r["answer"])
    result = {"config": config, "by_level": summarise(rows, problems, args), "overall": overall(rows, spec),
              "examples": examples(rows, problems), "seconds_this_run": round(time.time() - t0, 1)}
    for level, entry in result["by_level"].items():
        line = f"level {level}: greedy {entry['greedy']['pass@1']} % {entry['greedy']['ci95']}"
        if "sampled" in entry:
            line += f", sampled {entry['sampled']['pass@1']} % {entry['sampled']['ci95']}"
        print(line, "errors", entry["greedy"]["errors"], entry["greedy"]["plan_errors"], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
