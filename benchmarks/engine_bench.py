"""Engine costs as ratios measured in one run (issue: Launch–Check–Resume engine).

    python benchmarks/engine_bench.py            # testbed + Qwen2.5-0.5B-shaped random model (~6 min)
    python benchmarks/engine_bench.py --quick    # testbed only (~30 s)

Prints, for each model:
* check cost (4 appended [STOP]-style tokens on the live cache, then crop) vs
  re-encoding the same prefixes from scratch, per prefix length;
* check time as a share of launch time;
* launch throughput (our decode loop) vs ``model.generate`` on the same batch;
* KV-cache bytes before and after pruning N=64 -> 8.
Run it alone: with anything else on the 2 cores, torch slows 3-20x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pathprune.engine import LiveBatch, SamplingParams  # noqa: E402
from pathprune.engine.sampling import left_pad  # noqa: E402
from pathprune.models import load_model  # noqa: E402
from pathprune.testbed.problems import generate  # noqa: E402

NO_EOS = torch.tensor([], dtype=torch.long)


def timed(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.no_grad()
def reencode(model, batch: LiveBatch, prompts, extra: int):
    """Forward every row's prompt + prefix + ``extra`` tokens from scratch (left-padded batch)."""
    seqs = [prompts[r.problem_index] + r.tokens + [0] * extra for r in batch.records]
    ids, mask = left_pad(seqs, 0)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1)


def check_vs_reencode(model, batch, prompts, probe_id):
    check = timed(lambda: batch.probe(torch.full((4,), probe_id)), repeat=5)
    full = timed(lambda: reencode(model, batch, prompts, 4), repeat=3)
    return check, full


def testbed_part():
    model, tok = load_model("testbed")
    stop = tok.convert_tokens_to_ids("[STOP]")
    problems = generate("chain", 10, 4, "test") + generate("list", 8, 4, "test")
    prompts = [tok(p.prompt).input_ids for p in problems]
    params = SamplingParams(temperature=1.0)
    print("\n== testbed (1.2M params), 8 problems x 8 paths = 64 rows ==")
    print(f"{'L_prefix':>9} {'launch s':>9} {'check ms':>9} {'re-encode ms':>13} {'ratio':>7} {'check/launch':>13}")
    for length in (32, 64, 128, 192):
        batch = LiveBatch.launch(model, prompts, 8, tok.pad_token_id)
        t0 = time.perf_counter()
        batch.decode_until(length, params, NO_EOS, torch.tensor([stop]), top_logprobs=5)
        launch = time.perf_counter() - t0
        check, full = check_vs_reencode(model, batch, prompts, stop)
        print(f"{length:>9} {launch:>9.2f} {check * 1e3:>9.2f} {full * 1e3:>13.1f} {full / check:>6.1f}x "
              f"{100 * check / launch:>12.2f}%")
    # throughput: our loop vs generate, the same 64 rows x 150 tokens (EOS ignored in both)
    rows = [p for p in prompts for _ in range(8)]
    ids, mask = left_pad(rows, tok.pad_token_id)
    ours = timed(lambda: LiveBatch.launch(model, prompts, 8, tok.pad_token_id).decode_until(
        150, params, NO_EOS, torch.tensor([stop]), top_logprobs=5, feed_last=False), repeat=2)
    ref = timed(lambda: model.generate(ids, attention_mask=mask, do_sample=True, max_new_tokens=150,
                                       min_new_tokens=150, top_k=0, suppress_tokens=[stop]), repeat=2)
    print(f"launch throughput: ours {64 * 150 / ours:.0f} tok/s, generate {64 * 150 / ref:.0f} tok/s, "
          f"ratio {ref / ours:.2f}x")
    # memory: N=64 -> 8 on one problem
    batch = LiveBatch.launch(model, prompts[:1], 64, tok.pad_token_id)
    batch.decode_until(64, params, NO_EOS, torch.tensor([stop]))
    before = batch.cache_bytes()
    batch.select(list(range(8)))
    after = batch.cache_bytes()
    print(f"KV cache N=64 -> 8: {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB ({before / after:.1f}x smaller)")


def qwen_part():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                      num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096,
                      tie_word_embeddings=True)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).eval()
    n = 4
    print(f"\n== random Qwen2.5-0.5B shape ({sum(p.numel() for p in model.parameters()) / 1e6:.0f}M params), "
          f"N={n} rows ==")
    print(f"{'L_prefix':>9} {'check s':>8} {'re-encode s':>12} {'ratio':>7} {'decode s/step':>14}")
    params = SamplingParams(temperature=1.0)
    step_times = {}
    for length in (256, 1024, 2048):
        prompts = [torch.randint(0, 151000, (length,)).tolist()]
        batch = LiveBatch.launch(model, prompts, n, 0)  # the cache of n prefixes of `length` tokens
        check, full = check_vs_reencode(model, batch, prompts, 151000)
        t0 = time.perf_counter()
        batch.decode_until(3, params, NO_EOS, NO_EOS, top_logprobs=0)
        step_times[length] = (time.perf_counter() - t0) / 3
        print(f"{length:>9} {check:>8.3f} {full:>12.2f} {full / check:>6.1f}x {step_times[length]:>14.3f}")
    # launch time to 2048 estimated from the measured per-step times (piecewise linear in cache length)
    xs = sorted(step_times)
    est = sum(step_times[xs[0]] if t <= xs[0] else
              next(step_times[a] + (step_times[b] - step_times[a]) * (t - a) / (b - a)
                   for a, b in zip(xs, xs[1:]) if a <= t <= b) for t in range(1, 2049))
    print(f"estimated launch of {n} x 2048 tokens: {est:.0f} s; check at 2048 = {100 * check / est:.3f}% of it")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="testbed only")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    testbed_part()
    if not args.quick:
        qwen_part()


if __name__ == "__main__":
    main()
