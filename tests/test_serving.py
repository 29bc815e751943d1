"""`pathprune serve`: a real uvicorn server on a free local port, driven by the official `openai`
client and plain HTTP; bad requests get 400/413/429/504 with one-line reasons, and the server keeps serving."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time

import httpx2
import pytest
import torch
from openai import BadRequestError, OpenAI

from pathprune.engine.pruner import PathOutput
from pathprune.engine.sampling import SamplingParams
from pathprune.errors import PathpruneError
from pathprune.serving import ModelRunner, ServerConfig, ServerThread, create_app
from pathprune.serving.aggregate import vote
from pathprune.serving.responses import pieces
from pathprune.serving.runner import GenerateSpec, GenerateWork
from pathprune.signals import Signal, register_signal

from conftest import console_script

@register_signal("needs_label")
class _NeedsLabel(Signal):
    """A signal that grades paths against the reference answer, which a server never has."""

    name, source, learnable, needs = "needs_label", "none", False, frozenset({"label"})

    def __init__(self, arg=None):
        pass

    def score(self, view):
        return torch.zeros(len(view.records))


PROMPT = "C 2 + 6 * 9 * 9 + 2 + 6 - 3 ="  # a testbed chain problem (answer 3)
PROMPT_B = "C 6 * 7 - 3 + 8 - 7 * 9 - 2 ="
CONFIG = ServerConfig(model="testbed", max_queue=4, max_batch_requests=8, max_body_bytes=64 * 1024,
                      request_timeout=60, threads=1)


@pytest.fixture(scope="module")
def runner() -> ModelRunner:
    return ModelRunner(CONFIG)


@pytest.fixture(scope="module")
def server(runner):
    with ServerThread(create_app(CONFIG, runner=runner)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)


def post(server, path: str, body=None, **kw) -> httpx2.Response:
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    return httpx2.post(server.url + path, content=body, headers={"content-type": "application/json"},
                       timeout=kw.pop("timeout", 60), **kw)


def metric(server, name: str, **labels) -> float:
    """The value of one Prometheus sample (0 when absent)."""
    text = httpx2.get(server.url + "/metrics", timeout=10).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
            return float(m.group(3))
    return 0.0


def healthy(server) -> bool:
    r = httpx2.get(server.url + "/health", timeout=10)
    return r.status_code == 200 and r.json()["status"] == "ok"


def in_background(fn, *args, **kwargs) -> tuple[threading.Thread, dict]:
    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", fn(*args, **kwargs)))
    thread.start()
    return thread, out


def queued(server, depth: int, timeout: float = 30) -> None:
    """Block until ``depth`` requests wait in the server's queue."""
    deadline = time.monotonic() + timeout
    while server.app.state.scheduler.depth != depth:
        assert time.monotonic() < deadline, f"never saw {depth} queued requests"
        time.sleep(0.01)


# -- OpenAI endpoints through the official client --------------------------------------------------------

def test_chat_completion_is_the_voted_path_and_counts_every_token(client):
    resp = client.chat.completions.create(model="testbed", messages=[{"role": "user", "content": PROMPT}], seed=3,
                                          extra_body={"paths": 8, "keep": 2, "checkpoint": 12, "return_paths": True})
    ext = resp.model_extra["pathprune"]
    result = ext["results"][0]
    paths = result["paths"]
    assert ext["schedule"] == "12:2" and ext["signal"] == "stop" and len(paths) == 8
    assert sum(p["kept"] for p in paths) == result["paths_kept"] >= 2
    assert all(p["tokens"] <= 12 for p in paths if not p["kept"])  # pruned at the checkpoint
    chosen = next(p for p in paths if p["index"] == result["path"])
    assert chosen["kept"] and chosen["answer"] == result["answer"]
    assert resp.choices[0].message.content == chosen["text"] and resp.choices[0].message.role == "assistant"
    assert resp.choices[0].finish_reason == ("stop" if chosen["finished"] else "length")
    usage = ext["usage"]
    assert resp.usage.completion_tokens == usage["generated"] == sum(p["tokens"] for p in paths)
    assert resp.usage.prompt_tokens == usage["prompt"] + usage["check"]
    assert usage["check"] == 4 * sum(1 for p in paths if p["scores"])  # 4 [STOP] tokens per checked path
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_completions_several_prompts_and_aggregation(client):
    resp = client.completions.create(model="testbed", prompt=[PROMPT, PROMPT_B], seed=5, max_tokens=120,
                                     extra_body={"paths": 6, "schedule": "10:4,20:3", "signal": "mean_logprob",
                                                 "aggregation": "score_weighted", "return_paths": True})
    ext = resp.model_extra["pathprune"]
    assert [c.index for c in resp.choices] == [0, 1] and ext["aggregation"] == "score_weighted"
    for choice, result in zip(resp.choices, ext["results"]):
        paths = [PathOutput(p["index"], [0] * p["tokens"], p["text"], p["answer"], p["finished"], p["kept"],
                            p["pruned_at"], p["scores"]) for p in result["paths"]]
        v = vote(paths, "score_weighted")
        assert (v.answer, v.path.index) == (result["answer"], result["path"])
        assert choice.text == v.path.text
        assert max(p.pruned_at or 0 for p in paths) == 1 and sum(p.kept for p in paths) >= 3  # two stages ran


def test_step_checkpoints_per_request_with_their_own_delimiter(client):
    """``schedule: stepM/L:k`` with a request's ``step_delimiter``: each path is checked where it wrote its M-th
    step; a pruned path is exactly that prefix (paths pausing apart: tests/test_steps.py)."""
    resp = client.completions.create(model="testbed", prompt=PROMPT, seed=4, max_tokens=120,
                                     extra_body={"paths": 8, "schedule": "step2/30:3", "step_delimiter": "9",
                                                 "signal": "mean_logprob", "return_paths": True})
    ext = resp.model_extra["pathprune"]
    paths = ext["results"][0]["paths"]
    assert ext["schedule"] == "step2/30:3" and sum(p["kept"] for p in paths) == 3
    for p in paths:
        # before the cap: the request's delimiter was used (the default newline never comes on the testbed)
        assert len(p["checked_at"]) == 1 and p["checked_at"][0] < 30
        if not p["kept"]:  # its text is the prefix it was checked on, ending in its second 9
            assert p["tokens"] == p["checked_at"][0]
            assert p["text"].count("9") == 2 and p["text"].rstrip().endswith("9")
    with pytest.raises(BadRequestError, match="step_delimiter"):
        client.completions.create(model="testbed", prompt=PROMPT,
                                  extra_body={"schedule": "step2/40:3", "step_delimiter": ""})


def test_token_id_prompt_and_seed_reproduce(client, runner):
    ids = runner.tokenizer(PROMPT).input_ids
    kw = dict(model="testbed", seed=11, extra_body={"paths": 4, "keep": 2, "checkpoint": 8})
    by_ids = client.completions.create(prompt=ids, **kw)
    by_text = client.completions.create(prompt=PROMPT, **kw)
    assert by_ids.choices[0].text == by_text.choices[0].text
    assert by_ids.usage.model_dump() == by_text.usage.model_dump()


def test_streaming_chat_and_completion_match_the_whole_response(client):
    kw = dict(model="testbed", seed=7, extra_body={"paths": 4, "keep": 2, "checkpoint": 8})
    messages = [{"role": "user", "content": PROMPT}]
    whole = client.chat.completions.create(messages=messages, **kw)
    chunks = list(client.chat.completions.create(messages=messages, stream=True,
                                                 stream_options={"include_usage": True}, **kw))
    assert len(chunks) > 5  # word-sized deltas, not one blob
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()

    plain = client.completions.create(prompt=PROMPT, **kw)
    streamed = list(client.completions.create(prompt=PROMPT, stream=True, **kw))
    assert "".join(c.choices[0].text for c in streamed) == plain.choices[0].text
    assert streamed[-1].model_extra["pathprune"]["results"][0]["answer"] == \
        plain.model_extra["pathprune"]["results"][0]["answer"]


def test_stream_pieces_concatenate_exactly():
    for text in ["", "A 3", "  lead and trail  ", "a\n\nb"]:
        assert "".join(pieces(text)) == text


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list()] == ["testbed", "stop"]
    assert healthy(server)


# -- cross-request batching -----------------------------------------------------------------------------

def test_concurrent_requests_share_a_launch_batch_and_get_their_solo_answers(client, server):
    def ask(seed):
        return client.completions.create(model="testbed", prompt=PROMPT_B, seed=seed,
                                         extra_body={"paths": 4, "keep": 2, "checkpoint": 8, "return_paths": True})

    with server.app.state.scheduler.hold():  # the three wait together, as they would behind a long batch
        threads = [in_background(ask, seed) for seed in (21, 22, 23)]
        queued(server, 3)
    for t, _ in threads:
        t.join()
    merged = [out["value"] for _, out in threads]
    assert [m.model_extra["pathprune"]["batch_requests"] for m in merged] == [3, 3, 3]
    for seed, m in zip((21, 22, 23), merged):
        solo = ask(seed)
        assert solo.model_extra["pathprune"]["batch_requests"] == 1
        assert solo.choices[0].text == m.choices[0].text
        assert solo.model_extra["pathprune"]["results"] == m.model_extra["pathprune"]["results"]
    assert metric(server, "pathprune_batch_requests_bucket", le="2.0") < metric(
        server, "pathprune_batch_requests_bucket", le="4.0")


def test_runner_drops_cancelled_paths_at_the_checkpoint(runner):
    spec = GenerateSpec(SamplingParams(n=4, max_new_tokens=100), "8:4", "mean_logprob")
    works = [GenerateWork(spec, (PROMPT,), seed, "testbed") for seed in (1, 2)]
    encoded = [runner.encode(w) for w in works]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the server's worker runs (see ServerConfig.threads)
    try:
        alone = runner.generate(spec, works[:1], encoded[:1], cancelled=lambda w: False)[0][0]
        both = runner.generate(spec, works, encoded, cancelled=lambda w: w == 1)
    finally:
        torch.set_num_threads(threads)
    assert all(p.num_tokens <= 8 for p in both[1][0].paths)  # stopped at the checkpoint, cache rows freed
    assert [p.text for p in both[0][0].paths] == [p.text for p in alone.paths]  # the other request unaffected
    assert any(p.num_tokens > 8 for p in alone.paths)
    assert vote(alone.paths).answer == alone.answer  # the server's majority is the engine's


def test_score_weighted_vote_can_overrule_the_majority():
    def path(i, answer, score):
        return PathOutput(i, [0] * 10, f"A {answer}", answer, True, True, None, [score])

    paths = [path(0, "1", -3.0), path(1, "1", -3.0), path(2, "2", -0.5)]  # log-prob-like scores
    assert vote(paths, "majority").answer == "1"
    weighted = vote(paths, "score_weighted")
    assert weighted.answer == "2" and weighted.weights == {"1": 0.0, "2": 2.5}


# -- STOP's /classify ------------------------------------------------------------------------------------

def test_classify_official_client_format_matches_the_engine_check(client, server, runner):
    resp = client.completions.create(model="testbed", prompt=PROMPT, seed=9,
                                     extra_body={"paths": 4, "keep": 2, "checkpoint": 16, "signal": "stop",
                                                 "return_paths": True})
    paths = resp.model_extra["pathprune"]["results"][0]["paths"]
    prompt_ids = runner.tokenizer(PROMPT).input_ids
    inputs = [prompt_ids + runner.tokenizer.convert_tokens_to_ids(p["text"].split()[:16]) + [4] * 4 for p in paths]
    body = {"model": "testbed", "input": inputs, "add_special_tokens": False, "truncate_prompt_tokens": 65536,
            "assess_tail_len": 4}
    for route in ("/classify", "/v1/classify"):
        r = post(server, route, body)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert [d["index"] for d in data] == [0, 1, 2, 3]
        for d, p in zip(data, paths):
            assert d["probs"][0] + d["probs"][1] == pytest.approx(1.0)
            assert d["probs"][1] == pytest.approx(p["scores"][0], abs=1e-4)  # same two-stage pass as the check
    assert post(server, "/classify", {**body, "model": "stop"}).status_code == 200


@pytest.mark.parametrize("change, reason", [
    ({"assess_tail_len": 3}, "assess_tail_len is 3"),
    ({"input": [[1, 24, 7, 5, 5, 5, 5]]}, "must end in 4 [STOP] tokens"),
    ({"input": [[4, 4, 4, 4]]}, "needs a prefix"),
    ({"input": [[1, 24, 99, 4, 4, 4, 4]]}, "token id 99 is outside the vocabulary"),
    ({"input": [[1] * 300 + [4] * 4]}, "exceeds the model's context"),
    ({"model": "assess_lora"}, "unknown model 'assess_lora'"),
    ({"add_special_tokens": True}, "add_special_tokens must be false"),
    ({"input": []}, "input: List should have at least 1 item"),
])
def test_classify_rejects_bad_inputs(server, change, reason):
    body = {"model": "testbed", "input": [[1, 24, 7, 4, 4, 4, 4]], "add_special_tokens": False,
            "assess_tail_len": 4, **change}
    r = post(server, "/classify", body)
    assert r.status_code == 400 and reason in r.json()["error"]["message"]
    assert "\n" not in r.json()["error"]["message"]


# -- bad requests, limits and faults ---------------------------------------------------------------------

@pytest.mark.parametrize("body, reason", [
    ("{not json", "invalid JSON"),
    ("", "a JSON body is required"),
    ({"model": "gpt-4", "prompt": PROMPT}, "unknown model 'gpt-4'"),
    ({"model": "testbed", "prompt": PROMPT, "signal": "stp"}, "did you mean 'stop'"),
    ({"model": "testbed", "prompt": PROMPT, "signal": "stop:/etc"}, "'stop:/etc' is not enabled"),
    ({"model": "testbed", "prompt": PROMPT, "signal": "random:3"}, "'random:3' is not enabled"),
    ({"model": "testbed", "prompt": PROMPT, "signal": "needs_label"}, "needs reference answers"),
    ({"model": "testbed", "prompt": PROMPT, "paths": 4, "keep": 5, "checkpoint": 8}, "k must be in [1, 4]"),
    ({"model": "testbed", "prompt": PROMPT, "schedule": "8:2", "keep": 2}, "either schedule or keep"),
    ({"model": "testbed", "prompt": PROMPT, "schedule": "eight:2"}, "bad schedule stage"),
    ({"model": "testbed", "prompt": PROMPT, "paths": 65}, "paths must be <= 64"),
    ({"model": "testbed", "prompt": PROMPT, "paths": 0}, "paths: Input should be greater than or equal to 1"),
    ({"model": "testbed", "prompt": [1, 24, 500]}, "token id 500 is outside the vocabulary"),
    ({"model": "testbed", "prompt": PROMPT, "max_tokens": 250}, "exceeds the model's context of 256"),
    ({"model": "testbed", "prompt": PROMPT, "n": 2}, "n must be 1"),
    ({"model": "testbed", "prompt": PROMPT, "best_of": 2}, "unknown field 'best_of'"),
    ({"model": "testbed", "prompt": PROMPT, "temperature": -1}, "temperature"),
    ({"model": "testbed", "prompt": []}, "prompt is empty"),
    ({"model": "testbed"}, "prompt: Field required"),
])
def test_bad_requests_get_400_with_one_line_and_the_server_keeps_serving(server, body, reason):
    r = post(server, "/v1/completions", body)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert reason in message and "\n" not in message
    assert healthy(server)


def test_openai_client_sees_bad_request_errors(client):
    with pytest.raises(BadRequestError, match="did you mean 'stop'"):
        client.chat.completions.create(model="testbed", messages=[{"role": "user", "content": PROMPT}],
                                       extra_body={"signal": "stp"})


def test_oversized_bodies_get_413(server):
    big = {"model": "testbed", "prompt": "C 1 " * 20000}
    assert post(server, "/v1/completions", big).status_code == 413  # Content-Length says so at once

    def chunked():  # no Content-Length: the limit is enforced while the body streams in
        yield b'{"model": "testbed", "prompt": "'
        for _ in range(100):
            yield b"C 1 " * 250
        yield b'"}'

    r = post(server, "/v1/completions", chunked())
    assert r.status_code == 413 and "exceeds the limit of 65536 bytes" in r.json()["error"]["message"]
    assert healthy(server)


def test_full_queue_answers_429_and_recovers(server, client):
    body = {"model": "testbed", "prompt": PROMPT, "paths": 2, "schedule": "none", "max_tokens": 20}
    with server.app.state.scheduler.hold():
        waiting = [in_background(post, server, "/v1/completions", {**body, "seed": i}) for i in range(4)]
        queued(server, 4)  # the queue holds 4
        rejected = [post(server, "/v1/completions", {**body, "seed": 9}) for _ in range(2)]
        # refused before the body is read: an invalid body, or one far over the size limit, gets the 429 too
        rejected.append(post(server, "/classify", {"model": "testbed", "input": "not a list"}))
        rejected.append(post(server, "/v1/completions", {"model": "testbed", "prompt": "C 1 " * 20000}))
        assert post(server, "/v1/completions", {"model": "testbed"}).status_code == 429
        assert healthy(server)  # status endpoints still answer
    for t, _ in waiting:
        t.join()
    assert [r.status_code for r in rejected] == [429, 429, 429, 429]
    assert rejected[0].headers["retry-after"] == "1" and "busy" in rejected[0].json()["error"]["message"]
    assert [out["value"].status_code for _, out in waiting] == [200] * 4
    assert {out["value"].json()["pathprune"]["batch_requests"] for _, out in waiting} == {4}
    assert client.completions.create(model="testbed", prompt=PROMPT, max_tokens=20).choices


def test_timeout_answers_504_while_queued_or_running(server, client):
    def cancelled(stage):
        return metric(server, "pathprune_requests_cancelled_total", reason="timeout", stage=stage)

    body = {"model": "testbed", "prompt": PROMPT, "paths": 16, "schedule": "none", "max_tokens": 100}
    before = cancelled("queued")
    with server.app.state.scheduler.hold():
        r = post(server, "/v1/completions", {**body, "timeout": 0.1})
        assert r.status_code == 504 and "timed out after 0.1 s" in r.json()["error"]["message"]
        assert cancelled("queued") == before + 1 and server.app.state.scheduler.depth == 0  # left the queue
    before = cancelled("running") + cancelled("queued")
    r = post(server, "/v1/completions", {**body, "timeout": 0.02})  # 16 paths x 100 tokens take longer
    assert r.status_code == 504
    assert cancelled("running") + cancelled("queued") == before + 1
    assert client.completions.create(model="testbed", prompt=PROMPT, max_tokens=20).choices
    assert healthy(server)


def test_disconnected_client_is_dropped_from_the_queue(server):
    with server.app.state.scheduler.hold():
        with pytest.raises(httpx2.TimeoutException):  # the client gives up while its request waits
            post(server, "/v1/completions", {"model": "testbed", "prompt": PROMPT, "seed": 99}, timeout=0.3)
        deadline = time.monotonic() + 10
        while not metric(server, "pathprune_requests_cancelled_total", reason="disconnect", stage="queued"):
            assert time.monotonic() < deadline, "the disconnect was never noticed"
            time.sleep(0.05)
        assert server.app.state.scheduler.depth == 0  # its slot is free again
    assert healthy(server)


def test_metrics_are_prometheus_text(server):
    r = httpx2.get(server.url + "/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert metric(server, "pathprune_requests_total", endpoint="/v1/completions", code="200") > 0
    assert metric(server, "pathprune_requests_total", endpoint="/v1/completions", code="400") > 0
    assert metric(server, "pathprune_tokens_total", kind="pruned_prefix") > 0
    assert metric(server, "pathprune_tokens_saved_total") > 0
    assert metric(server, "pathprune_paths_total", outcome="pruned") > 0
    assert metric(server, "pathprune_request_latency_seconds_count", endpoint="/v1/completions") > 0
    assert metric(server, "pathprune_classify_inputs_total") > 0
    assert "pathprune_queue_depth 0.0" in r.text


# -- the command line ------------------------------------------------------------------------------------

def test_serve_command_starts_a_server():
    """The console script starts a real server that answers a chat completion with pruned paths."""
    proc = subprocess.Popen([console_script(), "serve", "--port", "0", "--log-level", "info", "--n", "4",
                             "--schedule", "8:2"], stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in proc.stderr:  # uvicorn announces the port it bound
            m = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "the server never announced its port"
        assert httpx2.get(f"http://127.0.0.1:{port}/health", timeout=10).json()["status"] == "ok"
        r = httpx2.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=120,
                        json={"model": "testbed", "max_tokens": 40,
                              "messages": [{"role": "user", "content": PROMPT}]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["choices"][0]["message"]["content"] and body["usage"]["completion_tokens"] > 0
        assert body["pathprune"]["schedule"] == "8:2" and body["pathprune"]["results"][0]["paths_kept"] >= 2
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_command_rejects_bad_options():
    out = subprocess.run([sys.executable, "-m", "pathprune", "serve", "--paths", "100"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "default_paths (100) exceeds max_paths (64)" in out.stderr


def test_server_config_is_validated():
    with pytest.raises(PathpruneError, match="max_queue must be >= 1"):
        ServerConfig(max_queue=0)


def test_classify_refuses_a_checkpoint_whose_head_reads_logprobs():
    """/classify gets bare token ids: a head with features (stop_lp) cannot be served there, one clear line."""
    from pathprune.errors import PathpruneError
    from pathprune.signals.stop_signal import TESTBED_STOP_LP

    lp_runner = ModelRunner(ServerConfig(model="testbed", stop=str(TESTBED_STOP_LP)))
    with pytest.raises(PathpruneError, match=r"reads the prefix's log-probabilities \(mean_logprob\)"):
        lp_runner.prepare_classify([[1, 24, 7, 4, 4, 4, 4]], 4, None)


def test_stop_and_stop_lp_share_the_server_model(client):
    """stop_lp attaches a second named adapter to the model that already serves stop: each request
    scores with its own checkpoint, and stop's scores are the same before and after."""
    def scores(signal):
        resp = client.completions.create(model="testbed", prompt=PROMPT, seed=21, max_tokens=60,
                                         extra_body={"paths": 4, "keep": 2, "checkpoint": 12, "signal": signal,
                                                     "return_paths": True})
        return [p["scores"][0] for p in resp.model_extra["pathprune"]["results"][0]["paths"]]

    before = scores("stop")
    lp = scores("stop_lp")
    assert all(0 < s < 1 for s in before + lp) and lp != before
    assert scores("stop") == before
