"""`pathprune serve --backend vllm` against a stock vLLM OpenAI server, N = 16 paths per question, C clients.

    .venv-vllm/bin/python benchmarks/serve_vs_vllm.py --clients 32 --duration 240 --out docs/serve-vs-vllm.json

Both servers run `smollm2-135m-reasoner` on vLLM in their own process, one after the other, and the same
closed-loop clients (each sends its next question when the last is answered) ask `/v1/chat/completions` for
the reasoner's test problems (levels 3-5) at temperature 0.7, 192 tokens at most per path:

* stock vLLM (`python -m vllm.entrypoints.openai.api_server`, the CPU recipe of docs/vllm.md): `n = 16`, every
  path finished; the client votes the 16 answers itself (what a self-consistency user runs);
* pathprune: `paths = 16`, schedule `48:4` (mean_logprob), the server votes the 4 finished paths.

Prints requests/s (answered requests over the wall time, the last ones drained), p50/p95 latency, generated
tokens per request and the share of voted answers that are right. On 2 CPU cores one question with 16 paths
takes seconds, so the duration must hold several rounds of every client (about 10 minutes for the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pathprune.engine.selection import majority  # noqa: E402
from pathprune.models.loading import resolve  # noqa: E402
from pathprune.tasks.answers import extract_answer  # noqa: E402
from pathprune.tasks.grading import answers_equal  # noqa: E402
from pathprune.tasks.reasoner import suite  # noqa: E402

MODEL = "smollm2-135m-reasoner"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], url: str, timeout: float = 600) -> subprocess.Popen:
    log = open(Path(tempfile.gettempdir()) / f"serve_vs_vllm-{cmd[2].split('.')[-1]}.log", "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)  # its log, for a failure
    log.close()  # the child holds its own handle
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited at start-up: {' '.join(cmd)}")
        try:
            if httpx2.get(f"{url}/health", timeout=1).status_code == 200:
                return proc
        except httpx2.HTTPError:
            pass
        time.sleep(1)
    proc.terminate()
    raise SystemExit(f"the server did not start in {timeout:g} s: {' '.join(cmd)}")


def servers(python: str, n: int, schedule: str, max_tokens: int) -> dict[str, tuple[list[str], int]]:
    folder = str(resolve(MODEL))
    stock_port, ours_port = free_port(), free_port()
    stock = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", folder, "--served-model-name", MODEL,
             "--port", str(stock_port), "--enforce-eager", "--dtype", "float32", "--block-size", "32",
             "--enable-prefix-caching", "--kv-cache-memory-bytes", str(8 << 30), "--seed", "0"]
    ours = [python, "-m", "pathprune", "serve", "--backend", "vllm", "--model", MODEL, "--port", str(ours_port),
            "--n", str(n), "--schedule", schedule, "--max-tokens", str(max_tokens), "--log-level", "warning"]
    return {"stock vLLM, n = 16, every path finished": (stock, stock_port),
            f"pathprune serve --backend vllm, {schedule}": (ours, ours_port)}


async def client(http, url: str, kind: str, problems, until: float, rng: random.Random, args, records: list):
    while time.monotonic() < until:
        p = rng.choice(problems)
        body = {"model": MODEL, "messages": list(p.input), "temperature": 0.7, "max_tokens": args.max_tokens,
                "seed": rng.randrange(2**31)}
        body |= {"n": args.n} if kind == "stock" else {"paths": args.n}
        start = time.monotonic()
        try:
            r = await http.post(f"{url}/v1/chat/completions", json=body)
            data = r.json() if r.status_code == 200 else None
        except httpx2.HTTPError as err:
            records.append({"status": type(err).__name__})
            if isinstance(err, httpx2.ConnectError):  # the server is gone: stop instead of spinning
                return
            continue
        rec = {"status": r.status_code, "latency": time.monotonic() - start}
        if data:
            answers = [extract_answer(c["message"]["content"] or "", "math") for c in data["choices"]]
            voted = majority(answers) if kind == "stock" else answers[0]
            rec |= {"generated": data["usage"]["completion_tokens"],
                    "right": answers_equal(p.answer, voted, "math")}
        records.append(rec)


async def drive(url: str, kind: str, problems, args) -> dict:
    records: list[dict] = []
    async with httpx2.AsyncClient(timeout=600, limits=httpx2.Limits(max_connections=args.clients)) as http:
        start = time.monotonic()
        until = start + args.duration
        await asyncio.gather(*(client(http, url, kind, problems, until, random.Random(args.seed * 1000 + i), args,
                                      records) for i in range(args.clients)))
        wall = time.monotonic() - start
    ok = [r for r in records if r["status"] == 200]
    lat = sorted(r["latency"] for r in ok)
    pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None  # noqa: E731
    return {"requests_ok": len(ok), "errors": dict(Counter(str(r["status"]) for r in records if r["status"] != 200)),
            "wall_s": round(wall, 1), "req_per_s": round(len(ok) / wall, 3), "p50_s": pct(0.5), "p95_s": pct(0.95),
            "generated_per_request": round(sum(r["generated"] for r in ok) / max(1, len(ok)), 1),
            "right_share": round(sum(r["right"] for r in ok) / max(1, len(ok)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--schedule", default="48:4")
    ap.add_argument("--max-tokens", type=int, default=192)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    problems = suite("test", n_per_level=40, levels=(3, 4, 5))
    rows = []
    for name, (cmd, port) in servers(sys.executable, args.n, args.schedule, args.max_tokens).items():
        url = f"http://127.0.0.1:{port}"
        proc = start(cmd, url)
        try:
            asyncio.run(drive(url, "stock" if "stock" in name else "ours", problems[:2],
                              argparse.Namespace(**{**vars(args), "clients": 2, "duration": 1})))  # warm-up
            rows.append({"server": name, **asyncio.run(drive(url, "stock" if "stock" in name else "ours",
                                                              problems, args))})
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["req_per_s"]
    print(f"\n{args.clients} clients x {args.duration:g} s, N = {args.n}, {MODEL}, reasoner test levels 3-5\n")
    print("| server | requests/s | × stock | p50 s | p95 s | generated tokens / request | voted right | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        errs = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
        ratio = f"{r['req_per_s'] / base:.2f}" if base else "–"
        print(f"| {r['server']} | {r['req_per_s']} | {ratio} | {r['p50_s']} | {r['p95_s']} | "
              f"{r['generated_per_request']} | {100 * r['right_share']:.0f} % | {errs} |")
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows},
                                       indent=1) + "\n")


if __name__ == "__main__":
    main()
