"""Prometheus metrics of one server (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..engine.pruner import RequestOutput

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
TOKEN_KINDS = ("prompt", "pruned_prefix", "kept_prefix", "kept_continuation", "check", "reencoded")


def tokens_saved(result: RequestOutput) -> int:
    """Estimated tokens pruning saved on one prompt.

    A pruned path would have run about as long as the kept paths that outlived
    the checkpoints did; it is charged what it generated, so the saving is the
    difference. (The true figure needs the path's unpruned run, which is never made.)
    """
    kept = [p.num_tokens for p in result.paths if p.kept]
    pruned = [p.num_tokens for p in result.paths if not p.kept]
    if not pruned or not kept:
        return 0
    longest_pruned = max(pruned)
    survivors = [t for t in kept if t > longest_pruned] or kept
    full = sum(survivors) / len(survivors)
    return int(round(sum(max(0.0, full - t) for t in pruned)))


class Metrics:
    """Counters, gauges and histograms, rendered as Prometheus text by :meth:`render`."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("pathprune_requests", "HTTP requests answered, by endpoint and status code.",
                                ["endpoint", "code"], registry=r)
        self.latency = Histogram("pathprune_request_latency_seconds", "Time from request to full answer.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_seconds = Histogram("pathprune_queue_wait_seconds", "Time a request waited for its batch.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.batch_seconds = Histogram("pathprune_batch_seconds", "Time one launch batch took.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.batch_requests = Histogram("pathprune_batch_requests", "Requests merged into one launch batch.",
                                        buckets=BATCH_BUCKETS, registry=r)
        self.queue_depth = Gauge("pathprune_queue_depth", "Requests waiting for the model.", registry=r)
        self.tokens = Counter("pathprune_tokens", "Tokens spent, by what they were spent on "
                              "(generated = pruned_prefix + kept_prefix + kept_continuation).", ["kind"], registry=r)
        self.tokens_saved = Counter("pathprune_tokens_saved", "Estimated generated tokens pruning avoided.",
                                    registry=r)
        self.paths = Counter("pathprune_paths", "Paths launched and pruned.", ["outcome"], registry=r)
        self.cancelled = Counter("pathprune_requests_cancelled", "Requests whose work was dropped early.",
                                 ["reason", "stage"], registry=r)
        self.classify_inputs = Counter("pathprune_classify_inputs", "Prefixes scored by /classify.", registry=r)

    def observe_results(self, results: list[RequestOutput]) -> None:
        for res in results:
            usage = res.usage.as_dict()
            for kind in TOKEN_KINDS:
                self.tokens.labels(kind=kind).inc(usage[kind])
            self.tokens_saved.inc(tokens_saved(res))
            self.paths.labels(outcome="launched").inc(len(res.paths))
            self.paths.labels(outcome="pruned").inc(sum(not p.kept for p in res.paths))

    def render(self) -> bytes:
        return generate_latest(self.registry)
