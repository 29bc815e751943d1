"""The transformers backend and STOP's Check at the paper's scale, on one GPU (issue #15, item 5).

A randomly initialised model of Qwen2.5-1.5B's shape (bf16, built from its config: no download),
N = 64 paths of one random-token prompt decoded to a prefix of L = 2,048 tokens with the engine's own
``LiveBatch`` (temperature 1; the EOS list is empty, so every path reaches L), then:

* STOP's Check on the live cache (``StopModule.score_cached``: 4 [STOP] tokens with the LoRA adapter on,
  cache cropped back) vs re-encoding prompt + prefix (``StopModule.score_ids``): seconds each, the ratio,
  and the Check as a share of the launch time;
* the KV cache (``LiveBatch.cache_bytes``) before and after pruning 64 -> 8 (``LiveBatch.select``), the
  allocator's memory around it and ``torch.cuda.max_memory_allocated`` over the whole run;
* launch throughput (generated tokens per second, prefill included);
* the per-path sampler's cost (``choose_tokens`` over the N rows' full-vocabulary logits, top-p 0.95) as a
  share of a decode step (issue #24: on CPU it is about 5 % of a step).

Run it on the lent GPU machine with the device tool: ``run`` with command ``bash benchmarks/gpu_check.sh``
(it needs only torch, transformers, peft, safetensors and numpy; the figures also go to
``$OUT/gpu_check.json``). Here, on CPU: ``PYTHONPATH=src .venv/bin/python benchmarks/gpu_check.py --smoke``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import types
import warnings
from pathlib import Path

import torch

SRC = Path(__file__).resolve().parent.parent / "src"
QWEN25_15B = dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                  intermediate_size=8960, vocab_size=151936, max_position_embeddings=32768,
                  tie_word_embeddings=True)
SMOKE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=128, vocab_size=1024, max_position_embeddings=4096, tie_word_embeddings=True)


def import_engine():
    """The engine's and STOP's classes. Normally a plain import; if the package root's imports need a
    library this machine lacks, load only these modules (no package ``__init__`` runs) and say so."""
    try:
        from pathprune.engine.batch import LiveBatch
        from pathprune.engine.sampling import SamplingParams
        from pathprune.stop import StopConfig, StopModule
        return LiveBatch, SamplingParams, StopConfig, StopModule, "package"
    except ImportError as err:
        print(f"note: `import pathprune` failed ({err}); loading only engine.batch/sampling and stop.module")
        for name in ("pathprune", "pathprune.engine", "pathprune.stop"):
            if name not in sys.modules:
                pkg = types.ModuleType(name)
                pkg.__path__ = [str(SRC.joinpath(*name.split(".")))]
                sys.modules[name] = pkg
        from pathprune.engine.batch import LiveBatch
        from pathprune.engine.sampling import SamplingParams
        from pathprune.stop.config import StopConfig
        from pathprune.stop.module import StopModule
        return LiveBatch, SamplingParams, StopConfig, StopModule, "modules only"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run: 2-layer hidden-64 Qwen2, N=4, L=32, fp32")
    ap.add_argument("--n", type=int, help="paths (default 64; smoke 4)")
    ap.add_argument("--keep", type=int, help="paths kept by the prune (default 8; smoke 2)")
    ap.add_argument("--length", type=int, help="prefix tokens L (default 2048; smoke 32)")
    ap.add_argument("--prompt", type=int, help="random prompt tokens (default 256; smoke 16)")
    ap.add_argument("--rank", type=int, default=16, help="LoRA rank of the critique adapter (StopConfig default 16)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats of Check and re-encode (median)")
    ap.add_argument("--chunk", type=int, default=256, help="launch progress printed every this many tokens")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecation notes, from PEFT
    smoke = args.smoke
    n, keep = args.n or (4 if smoke else 64), args.keep or (2 if smoke else 8)
    length, prompt_len = args.length or (32 if smoke else 2048), args.prompt or (16 if smoke else 256)
    device = torch.device("cpu" if smoke or not torch.cuda.is_available() else "cuda")
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def timed(fn, repeats):
        times = []
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            out = fn()
            sync()
            times.append(time.perf_counter() - t0)
        return statistics.median(times), out

    import transformers
    from transformers import AutoModelForCausalLM, Qwen2Config

    LiveBatch, SamplingParams, StopConfig, StopModule, how = import_engine()
    torch.manual_seed(0)
    config = Qwen2Config(**(SMOKE if smoke else QWEN25_15B))
    t0 = time.perf_counter()
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
    stop = StopModule(model, StopConfig(rank=args.rank, alpha=2 * args.rank))  # adapter attached before Launch,
    with torch.no_grad():                                                       # as the engine's stop signal does
        torch.nn.init.normal_(stop.head.weight, std=config.hidden_size ** -0.5)  # random, so scores differ
        for name, p in stop.peft.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.02)  # PEFT starts B at 0: make the adapter change the [STOP] pass
    head_device = str(stop.head.weight.device)
    stop.to(device)  # StopModule builds its head on the CPU (see the note printed below)
    setup_s = time.perf_counter() - t0
    params = SamplingParams(n=n, temperature=1.0, max_new_tokens=length, seed=0)
    no_eos = torch.tensor([], dtype=torch.long)  # no EOS: no path is cut before L
    banned = torch.tensor([], dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, config.vocab_size, (prompt_len,), generator=gen).tolist()
    pad_id = 0  # one prompt: no padding anywhere

    # warm-up (kernels, cuBLAS, allocator) on a short batch
    warm = LiveBatch.launch(model, [prompt], 4, pad_id)
    warm.decode_until(8, params, no_eos, banned)
    stop.score_cached(warm)
    stop.score_ids([prompt + r.tokens for r in warm.records], pad_id)
    del warm
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    # Launch: prefill once, 64 paths decoded to L (the engine's top_logprobs=5 bookkeeping included)
    print(f"launch: {n} paths x {length} tokens, prompt {prompt_len} tokens, {device} {str(dtype)[6:]}", flush=True)
    sync()
    t0 = time.perf_counter()
    batch = LiveBatch.launch(model, [prompt], n, pad_id, seed=0)
    for upto in list(range(args.chunk, length, args.chunk)) + [length]:
        batch.decode_until(upto, params, no_eos, banned, top_logprobs=5)
        sync()
        print(f"  {upto:>5} tokens  {time.perf_counter() - t0:7.1f} s", flush=True)
    launch_s = time.perf_counter() - t0
    reached = sum(len(r.tokens) == length for r in batch.records)
    assert len(batch) == n and reached == n, f"only {reached}/{n} paths reached L={length}"

    # the per-path sampler alone: one step's token choice for the N rows (T 0.7, top-p 0.95, full vocabulary)
    sampling = sys.modules["pathprune.engine.sampling"]
    workspace, nucleus = sampling.Workspace(), SamplingParams(temperature=0.7, top_p=0.95)
    logits, keys = batch.logits.float(), batch.keys
    sampler_s, _ = timed(lambda: sampling.choose_tokens(logits, nucleus, sampling.path_uniforms(keys, length),
                                                        workspace), max(args.repeats, 5))

    # Check on the live cache vs re-encoding prompt + prefix
    bytes_full = batch.cache_bytes()
    check_s, p_cached = timed(lambda: stop.score_cached(batch), args.repeats)
    assert batch.cache_bytes() == bytes_full, "the Check did not restore the cache"
    prefixes = [prompt + r.tokens for r in batch.records]
    reencode_s, p_ids = timed(lambda: stop.score_ids(prefixes, pad_id, batch_size=n), args.repeats)
    max_dp = (p_cached - p_ids).abs().max().item()

    # Prune 64 -> 8 (the best-scored rows), freeing the others' cache
    alloc_before = torch.cuda.memory_allocated() if cuda else None
    batch.select(p_cached.topk(keep).indices.tolist())
    sync()
    alloc_after = torch.cuda.memory_allocated() if cuda else None
    bytes_kept = batch.cache_bytes()

    gib = 2 ** 30

    def size(b):
        return f"{b / gib:.3f} GiB" if b >= gib / 10 else f"{b / 2 ** 20:.2f} MiB"

    fig = {
        "device": torch.cuda.get_device_name() if cuda else "cpu", "dtype": str(dtype)[6:],
        "torch": torch.__version__, "transformers": transformers.__version__, "pathprune_import": how,
        "attn_implementation": model.config._attn_implementation, "cache_keyword": batch._cache_kw,
        "model": "Qwen2 random init, " + ("smoke shape" if smoke else "Qwen2.5-1.5B shape"),
        "params_M": round(sum(p.numel() for k, p in model.named_parameters() if "lora_" not in k) / 1e6, 1),
        "n": n, "keep": keep, "prefix_L": length, "prompt_tokens": prompt_len, "n_stop": stop.config.n_stop,
        "lora_rank": args.rank, "eos": "none (empty EOS list: every path reached L)", "setup_s": round(setup_s, 2),
        "launch_s": round(launch_s, 3), "launch_tokens_per_s": round(n * length / launch_s, 1),
        "decode_ms_per_step": round(1e3 * launch_s / length, 2),
        "sampler_ms_per_step": round(1e3 * sampler_s, 3),
        "sampler_share_of_step_pct": round(100 * sampler_s / (launch_s / length), 2),
        "check_cached_s": round(check_s, 5), "check_reencode_s": round(reencode_s, 5),
        "reencode_over_cached": round(reencode_s / check_s, 1),
        "check_share_of_launch_pct": round(100 * check_s / launch_s, 3),
        "max_abs_dp_cached_vs_reencode": round(max_dp, 4),
        "kv_cache_bytes_before": bytes_full, "kv_cache_bytes_after": bytes_kept,
        "kv_cache_gib_before": round(bytes_full / gib, 3), "kv_cache_gib_after": round(bytes_kept / gib, 3),
        "allocated_gib_before_prune": alloc_before and round(alloc_before / gib, 3),
        "allocated_gib_after_prune": alloc_after and round(alloc_after / gib, 3),
        "max_memory_allocated_gib": round(torch.cuda.max_memory_allocated() / gib, 3) if cuda else None,
        "stop_head_built_on": head_device,
    }
    rows = [
        ("model", f"{fig['model']}, {fig['params_M']} M params, {fig['dtype']}, "
                  f"attention {fig['attn_implementation']}"),
        ("device", f"{fig['device']} | torch {fig['torch']} | transformers {fig['transformers']} "
                   f"(forward takes `{fig['cache_keyword']}=`) | pathprune imported: {how}"),
        ("batch", f"N = {n} paths of one {prompt_len}-token random prompt, prefix L = {length}, temperature 1, "
                  "EOS list empty (no path cut early)"),
        ("launch", f"{launch_s:.2f} s  ({fig['launch_tokens_per_s']:,.0f} tokens/s, "
                   f"{fig['decode_ms_per_step']:.1f} ms per step of {n} rows)"),
        ("per-path sampler (T 0.7, top-p 0.95)", f"{fig['sampler_ms_per_step']:.3f} ms per step of {n} rows "
                                                  f"({fig['sampler_share_of_step_pct']:.2f} % of a decode step)"),
        (f"STOP check, live cache (n_stop {stop.config.n_stop}, LoRA r {args.rank})", f"{check_s:.4f} s"),
        ("STOP check, re-encoding prompt + prefix", f"{reencode_s:.4f} s"),
        ("re-encode / live cache", f"{fig['reencode_over_cached']:.1f}x  (max |p diff| {max_dp:.4f})"),
        ("check as share of launch", f"{fig['check_share_of_launch_pct']:.3f} %"),
        (f"KV cache {n} -> {keep} paths", f"{size(bytes_full)} -> {size(bytes_kept)}"),
    ]
    if cuda:
        rows += [("allocated before -> after prune", f"{size(alloc_before)} -> {size(alloc_after)}"),
                 ("torch.cuda.max_memory_allocated", f"{fig['max_memory_allocated_gib']:.3f} GiB (whole run, "
                                                     "re-encode included)")]
    width = max(len(k) for k, _ in rows)
    print("\n" + "\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    if head_device != str(device):
        print(f"note: StopModule built its head on {head_device}, the model is on {device}; this script moves it. "
              "load_stop does not, so the engine's `stop` signal would fail on a GPU model.")
    if os.environ.get("OUT"):
        path = Path(os.environ["OUT"]) / "gpu_check.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fig, indent=2) + "\n")
        print(f"figures written to {path}")


if __name__ == "__main__":
    main()
