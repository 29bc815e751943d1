"""Does pruning save *time* on vLLM? pathprune's vLLM backend against plain vLLM on one engine, in one run.

    .venv-vllm/bin/python benchmarks/time_bench.py --out docs/time-bench.json

What a user would run instead is plain vLLM finishing every path (``llm.generate`` with ``n`` paths per problem,
the same temperature and token limit). Rows, all on the same engine (``smollm2-135m-reasoner``, fp32), adjacent:

1. one prompt × N paths: plain vLLM vs pathprune's ``sample`` (Launch without checkpoints): tokens per second;
2. a batch of problems × N paths: plain vLLM, pathprune ``schedule="none"``, pathprune pruned (``--signal`` at
   ``--schedule``) with every request paused together (the barrier) and with a check per request: wall time,
   generated tokens, tokens/s, and the time target of issue #24 (a pruned run's wall time against ``its tokens /
   unpruned tokens × plain vLLM's wall time``);
3. under load (``--load-problems``, a stream of problems with at most ``--concurrency`` in flight, a finished
   one's slots refilled at once, as a server sees them): plain vLLM (``n`` paths per request), pathprune
   ``none`` and pruned: problems per second.

``--repeats`` takes the best of several runs of each row. ``--profile FILE`` writes a cProfile of one
``schedule="none"`` run (read it with ``python -m pstats``). Run it alone: anything else on the 2 cores distorts
the ratios.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from pathprune.engine import Pruner, SamplingParams, sample  # noqa: E402
from pathprune.engine.request import encode_prompt  # noqa: E402
from pathprune.evaluation.problems import requests_for  # noqa: E402
from pathprune.tasks.reasoner import suite  # noqa: E402


def best_of(fn, repeats: int):
    """``(result, best seconds)`` over ``repeats`` runs."""
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        runs.append((out, time.perf_counter() - t))
    return runs[0][0], min(s for _, s in runs)


def plain_vllm(llm, prompts: list[list[int]], n: int, temperature: float, max_tokens: int, eos: list[int]):
    """vLLM as users run it: n paths per prompt in one ``generate``; returns generated tokens."""
    from vllm import SamplingParams as VSP
    from vllm.inputs import TokensPrompt

    params = VSP(n=n, temperature=temperature, max_tokens=max_tokens, seed=0, stop_token_ids=eos, detokenize=False)
    outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
    return sum(len(c.token_ids) for o in outs for c in o.outputs)


def plain_stream(loop, prompts: list[list[int]], n: int, temperature: float, max_tokens: int, eos: list[int],
                 concurrency: int) -> int:
    """Plain vLLM under load: one request of ``n`` paths per problem, at most ``concurrency`` in flight, the
    next one admitted as soon as one finishes; returns generated tokens."""
    from collections import deque

    from vllm import SamplingParams as VSP

    pending, active, tokens = deque(prompts), [], 0
    while pending or active:
        while pending and len(active) < concurrency:
            active.append(loop.submit(pending.popleft(), VSP(n=n, temperature=temperature, max_tokens=max_tokens,
                                                             seed=0, stop_token_ids=eos, detokenize=False)))
        loop.step()
        for rid in [r for r in active if loop.done([r])]:
            tokens += sum(len(c.token_ids) for c in loop.collect([rid])[0].outputs)
            active.remove(rid)
    return tokens


def row(name: str, tokens: int, seconds: float) -> dict:
    return {"run": name, "tokens": tokens, "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-reasoner")
    ap.add_argument("--problems", type=int, default=8, help="Test problems of --levels (the batch rows).")
    ap.add_argument("--levels", default="3,4,5")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max-tokens", type=int, default=192)
    ap.add_argument("--signal", default="mean_logprob")
    ap.add_argument("--schedule", default="48:4")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--load-problems", type=int, default=64, help="Problems streamed under load (0: skip).")
    ap.add_argument("--concurrency", type=int, default=8, help="Problems in flight under load.")
    ap.add_argument("--profile", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    levels = tuple(int(x) for x in args.levels.split(","))
    count = max(args.problems, args.load_problems)
    stream = suite("test", n_per_level=-(-count // len(levels)), levels=levels)[:count]
    problems = stream[:args.problems]
    pruned = Pruner(args.model, args.signal, args.schedule, backend="vllm", problems_per_batch=len(problems),
                    answer_kind="math")
    backend, tok = pruned.backend, pruned.tokenizer
    prompts = [encode_prompt(tok, p.input) for p in problems]
    params = SamplingParams(n=args.n, temperature=args.temperature, max_new_tokens=args.max_tokens, seed=0)
    eos = sorted(backend.eos)

    def pathprune_tokens(schedule, chosen=problems, per_batch=len(problems), per_request=True):
        """One engine for every row (a second engine would halve the RAM)."""
        def run():
            pruned.per_request_checks = per_request
            outs = pruned.run(requests_for(tok, chosen), params, schedule=schedule, problems_per_batch=per_batch)
            return sum(o.usage.generated for o in outs)
        return run

    # warm-up: both paths through the engine once
    plain_vllm(backend.llm, prompts[:1], 2, args.temperature, 8, eos)
    sample(backend, tok, prompts[:1], SamplingParams(n=2, temperature=args.temperature, max_new_tokens=8))

    one = []
    tokens, s = best_of(lambda: plain_vllm(backend.llm, prompts[:1], args.n, args.temperature, args.max_tokens, eos),
                        args.repeats)
    one.append(row("plain vLLM", tokens, s))
    paths, s = best_of(lambda: sample(backend, tok, prompts[:1], params), args.repeats)
    one.append(row("pathprune sample", sum(len(p) for p in paths[0]), s))
    one[1]["ratio_to_plain"] = round(one[1]["tokens_per_s"] / one[0]["tokens_per_s"], 3)

    batch = []
    tokens, s = best_of(lambda: plain_vllm(backend.llm, prompts, args.n, args.temperature, args.max_tokens, eos),
                        args.repeats)
    batch.append(row("plain vLLM, every path finished", tokens, s))
    tokens, s = best_of(pathprune_tokens("none"), args.repeats)
    batch.append(row('pathprune, schedule="none"', tokens, s))
    tokens, s = best_of(pathprune_tokens(args.schedule, per_request=False), args.repeats)
    batch.append(row(f"pathprune, {args.signal} {args.schedule}, barrier", tokens, s))
    tokens, s = best_of(pathprune_tokens(args.schedule), args.repeats)
    batch.append(row(f"pathprune, {args.signal} {args.schedule}, per request", tokens, s))
    base, unpruned = batch[0], batch[1]
    unpruned["ratio_to_plain"] = round(unpruned["tokens_per_s"] / base["tokens_per_s"], 3)
    for cut in batch[2:]:
        target = cut["tokens"] / unpruned["tokens"] * base["seconds"]
        cut["time_target_s"] = round(1.1 * target, 3)
        cut["wall_vs_token_share"] = round(cut["seconds"] / target, 3)  # target: <= 1.1

    load = []
    if args.load_problems:
        chosen = stream[:args.load_problems]
        prompts_all = [encode_prompt(tok, p.input) for p in chosen]
        for name, fn in (
                ("plain vLLM, every path finished", lambda: plain_stream(
                    backend.loop, prompts_all, args.n, args.temperature, args.max_tokens, eos, args.concurrency)),
                ('pathprune, schedule="none"', pathprune_tokens("none", chosen, args.concurrency)),
                (f"pathprune, {args.signal} {args.schedule}, per request",
                 pathprune_tokens(args.schedule, chosen, args.concurrency))):
            tokens, s = best_of(fn, 1)
            load.append({**row(name, tokens, s), "problems_per_s": round(len(chosen) / s, 3)})
        for r in load[1:]:
            r["vs_plain"] = round(r["problems_per_s"] / load[0]["problems_per_s"], 3)
        load[2]["vs_none"] = round(load[2]["problems_per_s"] / load[1]["problems_per_s"], 3)

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(pathprune_tokens("none"))
        profiler.dump_stats(str(args.profile))

    result = {"model": args.model, "problems": len(problems), "levels": levels, "n": args.n,
              "temperature": args.temperature, "max_tokens": args.max_tokens, "repeats": args.repeats,
              "concurrency": args.concurrency, "one_prompt": one, "batch": batch, "load": load}
    for title, rows in (("one prompt", one), (f"{len(problems)} problems", batch),
                        (f"under load: {args.load_problems} problems, {args.concurrency} in flight", load)):
        print(f"\n{title} × {args.n} paths")
        for r in rows:
            extra = "  ".join(f"{k} {v}" for k, v in r.items() if k not in ("run", "tokens", "seconds", "tokens_per_s"))
            print(f"  {r['run']:<40} {r['seconds']:>8.2f} s  {r['tokens']:>7} tok  {r['tokens_per_s']:>7.1f} tok/s  {extra}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
