"""Bounded load test of ``pathprune serve`` on the testbed: C concurrent clients for D seconds.

Starts a real server in a subprocess (one per configuration), drives it over HTTP
with closed-loop clients (each sends its next request when the last one is
answered), and reports throughput, p50/p95 latency, errors and how many requests
shared each launch batch. The same load runs with cross-request batching on and off
(``--max-batch-requests 1``), so the table shows what batching buys.

    python benchmarks/serve_load.py --clients 32 --duration 60
    python benchmarks/serve_load.py --clients 16 --duration 30 --out runs/serve_load.json

Overload: clients that honour ``Retry-After`` (a 429 makes the client wait, then send again), at the queue's
size and at 4x it; goodput is answered requests per second:

    python benchmarks/serve_load.py --clients 16,64 --max-queue 16 --retry-after --batching 16 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
import threading
import time

import httpx2

from pathprune.testbed import generate


def start_server(max_batch_requests: int, threads: int, max_queue: int, backend: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "pathprune", "serve", "--port", "0", "--threads", str(threads), "--backend", backend,
           "--max-batch-requests", str(max_batch_requests), "--max-queue", str(max_queue), "--log-level", "info"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # no access log
    for line in proc.stderr:
        m = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
        if m:
            # keep draining stderr so uvicorn's access log never blocks on a full pipe
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, m.group(1)
    raise SystemExit("the server did not start: " + " ".join(cmd))


async def client_loop(http: httpx2.AsyncClient, url: str, prompts: list[str], until: float, rng: random.Random,
                      paths: int, records: list[dict], retry_after: bool = False) -> None:
    while time.monotonic() < until:
        body = {"model": "testbed", "prompt": rng.choice(prompts), "seed": rng.randrange(2**31), "paths": paths}
        start = time.monotonic()
        try:
            r = await http.post(f"{url}/v1/completions", json=body)
            rec = {"status": r.status_code, "latency": time.monotonic() - start}
            if r.status_code == 200:
                data = r.json()
                rec |= {"generated": data["usage"]["completion_tokens"],
                        "batch": data["pathprune"]["batch_requests"],
                        "saved": data["pathprune"]["tokens_saved_estimate"]}
        except httpx2.HTTPError as err:
            rec = {"status": type(err).__name__, "latency": time.monotonic() - start}
        records.append(rec)
        if retry_after and rec["status"] == 429:  # a well-behaved client waits as told before its next request
            await asyncio.sleep(float(r.headers.get("retry-after", "1")))


async def load(url: str, clients: int, duration: float, paths: int, seed: int, retry_after: bool = False) -> dict:
    prompts = [p.prompt for fam, level in (("chain", 6), ("chain", 8), ("list", 5), ("list", 7))
               for p in generate(fam, level, 25, "test", seed)]
    records: list[dict] = []
    async with httpx2.AsyncClient(timeout=300, limits=httpx2.Limits(max_connections=clients)) as http:
        await http.post(f"{url}/v1/completions", json={"model": "testbed", "prompt": prompts[0]})  # warm-up
        start = time.monotonic()
        until = start + duration
        await asyncio.gather(*(client_loop(http, url, prompts, until, random.Random(seed * 1000 + i), paths, records,
                                           retry_after) for i in range(clients)))
        wall = time.monotonic() - start
    ok = [r for r in records if r["status"] == 200]
    lat = sorted(r["latency"] for r in ok)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    errors: dict[str, int] = {}
    for r in records:
        if r["status"] != 200:
            errors[str(r["status"])] = errors.get(str(r["status"]), 0) + 1
    return {"requests": len(records), "ok": len(ok), "errors": errors, "wall_s": round(wall, 1),
            "req_per_s": round(len(ok) / wall, 2),
            "generated_tok_per_s": round(sum(r["generated"] for r in ok) / wall, 1),
            "p50_s": round(pct(0.50), 3), "p95_s": round(pct(0.95), 3),
            "mean_batch_requests": round(statistics.mean(r["batch"] for r in ok), 2) if ok else 0,
            "tokens_saved_share": round(sum(r["saved"] for r in ok) / max(1, sum(r["saved"] + r["generated"]
                                                                             for r in ok)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="32", help="Concurrent clients; a comma list runs each in turn.")
    ap.add_argument("--max-queue", type=int, default=None, help="The server's queue (default max(64, 2 x clients)).")
    ap.add_argument("--retry-after", action="store_true", help="Clients honour Retry-After on 429 (overload runs).")
    ap.add_argument("--backend", default="transformers", help="The server's backend (transformers | vllm).")
    ap.add_argument("--duration", type=float, default=60.0, help="Seconds of load per configuration.")
    ap.add_argument("--paths", type=int, default=8, help="N per request (server default schedule 16:4).")
    ap.add_argument("--threads", type=int, default=1, help="Torch threads of the server's worker.")
    ap.add_argument("--batching", default="16,1", help="max_batch_requests values to compare.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="Write the figures as JSON here.")
    args = ap.parse_args()

    rows = []
    for clients in (int(x) for x in args.clients.split(",")):
        for mbr in (int(x) for x in args.batching.split(",")):
            queue = args.max_queue or max(64, 2 * clients)
            proc, url = start_server(mbr, args.threads, queue, args.backend)
            try:
                res = asyncio.run(load(url, clients, args.duration, args.paths, args.seed, args.retry_after))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            rows.append({"clients": clients, "max_queue": queue, "max_batch_requests": mbr, **res})
            print(json.dumps(rows[-1]), flush=True)

    print(f"\n{args.duration:g} s per row, N={args.paths}, schedule 16:4, signal stop, testbed, {args.backend}"
          + (", clients honour Retry-After" if args.retry_after else "") + "\n")
    print("| clients | queue | max_batch_requests | requests ok | errors | req/s | generated tok/s | p50 s | p95 s "
          "| mean batch |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        errs = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
        print(f"| {r['clients']} | {r['max_queue']} | {r['max_batch_requests']} | {r['ok']} | {errs} | "
              f"{r['req_per_s']} | {r['generated_tok_per_s']} | {r['p50_s']} | {r['p95_s']} | "
              f"{r['mean_batch_requests']} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
