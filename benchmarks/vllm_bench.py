"""The vLLM backend against pathprune's transformers loop, in one run (issue #15's benchmark; docs/vllm.md).

    .venv-vllm/bin/python benchmarks/vllm_bench.py --out docs/vllm-bench.json

On SmolLM2-135M-Instruct (fp32, converted from the shipped GGUF), N = 16 paths of one word problem:

1. **Launch throughput:** ``sample`` (Launch without checkpoints) on each backend, the same per-path random
   streams, so both decode the same tokens: generated tokens per second.
2. **STOP's check inside vLLM vs re-encoding inside vLLM** at L = 128, 512, 1024: the 16 prefixes are generated
   (EOS ignored so every path reaches L), then the check (prompt + prefix + 4 [STOP] tokens, one-token requests)
   runs once with the prefix cache warm (what the engine does) and once after ``reset_prefix_cache`` (the same
   requests re-encoding every prefix). A randomly initialised STOP checkpoint (rank 16, all linear layers) is
   used: the cost does not depend on the weights.
3. **Monte-Carlo labelling** (``label_problem``: a filter of N paths, K continuations per prefix) on both backends:
   seconds per problem, and whether both wrote the same labels.

Run it alone: anything else on the 2 cores distorts the ratios. Figures are printed and written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

import torch  # noqa: E402

from pathprune.engine import SamplingParams, encode_prompt, sample  # noqa: E402
from pathprune.engine.vllm_backend import load_vllm_backend  # noqa: E402
from pathprune.models import load_model  # noqa: E402
from pathprune.models.loading import resolve  # noqa: E402
from pathprune.tasks.wordproblems import suite  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def launch_throughput(backend, model, tok, prompt, n, tokens, repeats):
    params = SamplingParams(n=n, temperature=0.7, max_new_tokens=tokens, seed=0)
    rows = {}
    for name, source in (("vllm", backend), ("transformers", model)):
        sample(source, tok, [prompt], params)  # warm-up
        runs = [timed(lambda: sample(source, tok, [prompt], params)) for _ in range(repeats)]
        generated = sum(len(p) for p in runs[0][0][0])
        best = min(s for _, s in runs)
        rows[name] = {"tokens": generated, "seconds": round(best, 3), "tokens_per_s": round(generated / best, 1)}
        rows[name]["paths"] = runs[0][0][0]
    same = rows["vllm"].pop("paths") == rows["transformers"].pop("paths")
    return {**rows, "speedup": round(rows["vllm"]["tokens_per_s"] / rows["transformers"]["tokens_per_s"], 2),
            "same_tokens": same}


def check_vs_reencode(backend, prompt, n, lengths, n_stop, repeats):
    from vllm import SamplingParams as VSP
    from vllm.inputs import TokensPrompt

    from pathprune.stop.vllm_plugin import READ_IDS, stop_marker_id

    marker, rows = stop_marker_id(backend.tokenizer), {}
    for length in lengths:
        outs = backend.llm.generate([TokensPrompt(prompt_token_ids=prompt)] * n,
                                    [VSP(max_tokens=length, temperature=1.0, seed=i, ignore_eos=True,
                                         detokenize=False) for i in range(n)], use_tqdm=False)
        prefixes = [prompt + list(o.outputs[0].token_ids) for o in outs]

        def check():
            batch = backend.prefix_batch(prefixes)
            values = batch.read([marker] * n_stop, list(READ_IDS))
            return values, sum(h.cached for (_, phase), h in batch.hits.items() if phase == "check")

        cached_runs = [timed(check) for _ in range(repeats)]
        fresh_runs = []
        for _ in range(repeats):
            backend.llm.reset_prefix_cache()
            fresh_runs.append(timed(check))
        (v_cached, hit), t_cached = min(cached_runs, key=lambda r: r[1])
        (v_fresh, _), t_fresh = min(fresh_runs, key=lambda r: r[1])
        rows[str(length)] = {"check_s": round(t_cached, 4), "reencode_s": round(t_fresh, 4),
                             "ratio": round(t_fresh / t_cached, 2),
                             "cache_hit_share": round(hit / sum(map(len, prefixes)), 3),
                             "max_score_diff": float((v_cached - v_fresh).abs().max())}
    return rows


def labelling(backend, model, tok, problems, repeats_ignored=1):
    from pathprune.stop.labels import LabelConfig, label_problem

    cfg = LabelConfig(n_filter=8, prefix_tokens=(32, 64), k=4, temperature=0.7, max_new_tokens=192,
                      min_correct=0.0, max_correct=1.0)
    rows, labels = {}, {}
    for name, source in (("vllm", backend), ("transformers", model)):
        label_problem(source, tok, problems[0], cfg, {})  # warm-up
        out, seconds = timed(lambda: [label_problem(source, tok, p, cfg, {}) for p in problems])
        labels[name] = {(r["problem_id"], r["path_index"], r["prefix_len"]): r["outcomes"]
                        for _, records in out for r in records}
        rows[name] = {"problems": len(problems), "prefixes": len(labels[name]),
                      "seconds_per_problem": round(seconds / len(problems), 2)}
    rows["speedup"] = round(rows["transformers"]["seconds_per_problem"] / rows["vllm"]["seconds_per_problem"], 2)
    # float noise (vLLM's CPU kernels vs torch's) flips a sampled token now and then; once flipped, a path
    # differs from there on: the share of prefixes (same problem, path, cut) whose K outcomes agree exactly
    common = set(labels["vllm"]) & set(labels["transformers"])
    rows["common_prefixes"] = len(common)
    rows["same_outcomes_share"] = round(sum(labels["vllm"][k] == labels["transformers"][k] for k in common)
                                        / max(1, len(common)), 3)
    rows["mean_soft_label"] = {name: round(sum(map(sum, v.values())) / max(1, sum(map(len, v.values()))), 3)
                               for name, v in labels.items()}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=128, help="Launch: tokens per path.")
    ap.add_argument("--lengths", default="128,512,1024", help="Check: prefix lengths L.")
    ap.add_argument("--label-problems", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(2)

    from pathprune.stop import StopConfig, StopModule
    from pathprune.stop.checkpoint import save_stop

    model, tok = load_model(args.model)
    problems = suite("validation", n_per_level=args.label_problems, levels=(1,))[:args.label_problems]
    prompt = encode_prompt(tok, problems[0].input)
    with tempfile.TemporaryDirectory() as tmp:
        # on a second copy: the adapter attached to it must not slow the transformers loop measured below
        stop_dir = save_stop(StopModule(load_model(args.model)[0], StopConfig(base_model=args.model)),
                             Path(tmp) / "stop")
        from pathprune.signals.stop_signal import StopSignal

        directory = resolve(args.model)
        (backend, init_s) = timed(lambda: load_vllm_backend(
            directory, hf_overrides=StopSignal(str(stop_dir)).vllm_overrides(directory),
            max_model_len=max(int(x) for x in args.lengths.split(",")) + len(prompt) + 16))
        print(f"vLLM engine with the STOP plugin: {init_s:.1f} s to build")
        results = {"model": args.model, "n": args.n, "torch_threads": torch.get_num_threads(),
                   "launch": launch_throughput(backend, model, tok, prompt, args.n, args.tokens, args.repeats)}
        print("launch", json.dumps(results["launch"]))
        results["check"] = check_vs_reencode(backend, prompt, args.n, [int(x) for x in args.lengths.split(",")],
                                             4, args.repeats)
        print("check", json.dumps(results["check"]))
        results["labelling"] = labelling(backend, model, tok, problems)
        print("labelling", json.dumps(results["labelling"]))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
