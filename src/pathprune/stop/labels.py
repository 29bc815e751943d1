"""Monte-Carlo soft labels for prefixes (``pathprune label``).

For each problem: sample ``n_filter`` paths and keep the problem only if its
share of correct paths lies in [min_correct, max_correct] (the paper drops
problems with > 28 or < 4 of 32 right: 0.125 ... 0.875); cut every path at
each of ``prefix_tokens`` (paths that ended before a cut give no prefix
there; identical prefixes are labelled once); sample ``k`` continuations per
prefix from its cache (the prefix is prefilled once and shared by its k
continuations), each with the rest of the path's budget (``max_new_tokens``
minus its cut); grade; the soft label is the share of correct continuations.

Records (JSONL, one per prefix) carry ``prefix_token_ids`` (prompt + generated
prefix, the official STOP field), ``soft_label``, the individual ``outcomes``
(``outcomes[0]`` is the K = 1 hard label), ``continuation_tokens`` (each
continuation's length), ``problem_id`` and provenance. The
run directory is resumable (:class:`pathprune.io.runlog.RunLog`).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

from ..engine.backend import as_backend
from ..engine.loop import sample
from ..engine.request import encode_prompt
from ..engine.sampling import SamplingParams
from ..engine.schedule import checked_checkpoints, parse_checkpoint
from ..engine.steps import DEFAULT_DELIMITER, StepCounter, recorded_settings
from ..errors import PathpruneError
from ..io.runlog import RunLog
from ..tasks.grading import grade
from ..tasks.problem import Problem
from .config import fingerprint, fingerprint_files


@dataclass(frozen=True)
class LabelConfig:
    n_filter: int = 16
    """Paths sampled per problem for the difficulty filter (paper: 32)."""
    min_correct: float = 0.125
    """Drop problems with a smaller share of correct paths (paper: 4 of 32)."""
    max_correct: float = 0.875
    """Drop problems with a larger share of correct paths (paper: 28 of 32)."""
    prefix_tokens: tuple[int | str, ...] = (12, 16, 20, 24)
    """Cut points: generated tokens L (paper: one cut at 2,048), or ``"stepM/L"``: where the path wrote its M-th
    step (at most L tokens; :class:`~pathprune.engine.steps.StepCounter`), each path at its own length."""
    k: int = 16
    """Continuations per prefix (paper: 32)."""
    temperature: float = 1.0
    """Sampling temperature of paths and continuations (paper: 0.6)."""
    top_p: float = 1.0
    max_new_tokens: int = 160
    seed: int = 0
    step_delimiter: str = DEFAULT_DELIMITER
    """Where a step ends, for ``stepM/L`` cuts."""

    def __post_init__(self) -> None:
        if not 0 <= self.min_correct <= self.max_correct <= 1:
            raise PathpruneError("need 0 <= min_correct <= max_correct <= 1")
        if self.k < 1 or self.n_filter < 1 or not self.prefix_tokens:
            raise PathpruneError("k and n_filter must be >= 1 and at least one prefix length is needed")
        checked_checkpoints(self.prefix_tokens, self.max_new_tokens, "prefix_tokens")


def _key(*parts) -> int:
    return zlib.crc32(":".join(map(str, parts)).encode())


def label_problem(model, tok, problem: Problem, cfg: LabelConfig, provenance: dict) -> tuple[dict, list[dict]]:
    """Label one problem: (unit row, prefix records). No records when the problem is filtered out."""
    return label_problems(model, tok, [problem], cfg, provenance)[0]


def label_problems(model, tok, problems: list[Problem], cfg: LabelConfig,
                   provenance: dict) -> list[tuple[dict, list[dict]]]:
    """Label ``problems`` together: (unit row, prefix records) per problem, in order.

    Every draw is keyed by (problem, path, cut), not by the position in a batch, so labelling several problems
    at once gives the labels of one at a time, in fewer and fuller engine batches: the filter paths of all
    problems are one batch, and so are their prefixes' continuations (8 prefixes at a time in process, where
    the KV cache is ours to bound; all at once on vLLM, which schedules its own)."""
    backend = as_backend(model, tok)
    prompts = [encode_prompt(tok, problem.input) for problem in problems]
    params = SamplingParams(n=cfg.n_filter, temperature=cfg.temperature, top_p=cfg.top_p,
                            max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    filtered = sample(backend, tok, prompts, params, problem_keys=[_key(p.id) for p in problems])
    counter = StepCounter(tok, cfg.step_delimiter)
    cuts = [(str(spec), *parse_checkpoint(str(spec))) for spec in cfg.prefix_tokens]  # parsed once, used per path
    units, correct, todo = [], [], []  # todo: (problem index, prefix, path index, cut, step checkpoint or None)
    for j, (problem, paths) in enumerate(zip(problems, filtered, strict=True)):
        right = [grade(problem, tok.decode(p, skip_special_tokens=True))[1] for p in paths]
        share = sum(right) / len(paths)
        units.append({"problem_id": problem.id, "n_correct": sum(right), "n_filter": len(paths),
                      "kept": cfg.min_correct <= share <= cfg.max_correct, "prefixes": 0})
        correct.append(right)
        if units[-1]["kept"]:
            todo += [(j, *item) for item in _distinct_prefixes(paths, cuts, counter)]
    chunk = 8 if backend.in_process else max(1, len(todo))
    conts: dict[tuple[int, tuple[int, ...]], list[list[int]]] = {}
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        for cut in sorted({item[3] for item in part}):
            # a continuation from cut L may run to the path's own budget: max_new_tokens - L, not less
            cont_params = SamplingParams(n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p,
                                         max_new_tokens=cfg.max_new_tokens - cut, seed=cfg.seed + 1)
            group = [(j, pre, i) for j, pre, i, c, _ in part if c == cut]
            drawn = sample(backend, tok, [prompts[j] + list(pre) for j, pre, _ in group], cont_params,
                           problem_keys=[_key(problems[j].id, i, cut) for j, _, i in group])
            conts.update(((j, pre), outs) for (j, pre, _), outs in zip(group, drawn, strict=True))
    records: list[list[dict]] = [[] for _ in problems]
    for j, pre, i, cut, step in todo:
        problem = problems[j]
        outcomes = [int(grade(problem, tok.decode(list(pre) + c, skip_special_tokens=True))[1])
                    for c in conts[j, pre]]
        records[j].append({
            "problem_id": problem.id, "path_index": i, "prefix_len": cut, "prompt_len": len(prompts[j]),
            "prefix_token_ids": prompts[j] + list(pre), "soft_label": sum(outcomes) / len(outcomes),
            "outcomes": outcomes, "continuation_tokens": [len(c) for c in conts[j, pre]],
            "path_correct": bool(correct[j][i]), "meta": _meta(problem), "provenance": provenance,
            **({"checkpoint": step} if step is not None else {}),
        })
    for unit, recs in zip(units, records, strict=True):
        unit["prefixes"] = len(recs)
    return list(zip(units, records, strict=True))


def _distinct_prefixes(paths: list[list[int]], cuts: list[tuple[str, int, int | None]],
                       counter: StepCounter) -> list[tuple[tuple[int, ...], int, int, str | None]]:
    """(prefix, path index, cut, step checkpoint or None) once per distinct prefix, in path order: every path cut
    at every ``(spec, L, M)`` where it was still running; a prefix some step checkpoint cut names the first."""
    prefixes: dict[tuple[int, ...], tuple[int, int]] = {}
    step_cuts: dict[tuple[int, ...], str] = {}
    for i, p in enumerate(paths):
        for spec, length, steps in cuts:
            cut = length if steps is None else counter.position(p, steps, length)
            if cut is not None and len(p) > cut:  # the path was still running at the cut
                prefixes.setdefault(tuple(p[:cut]), (i, cut))
                if steps is not None:
                    step_cuts.setdefault(tuple(p[:cut]), spec)
    return [(pre, i, cut, step_cuts.get(pre)) for pre, (i, cut) in prefixes.items()]


def _meta(problem: Problem) -> dict:
    return {k: v for k, v in problem.meta.items() if isinstance(v, (str, int, float, bool))}


def label_provenance(model_name: str, fp: dict, cfg: LabelConfig) -> dict:
    """The ``provenance`` field of every record (``fp`` from :func:`pathprune.stop.config.fingerprint`)."""
    return {"model": model_name, "fingerprint": fp["weights_sha256"], "seed": cfg.seed,
            "temperature": cfg.temperature, "top_p": cfg.top_p, "k": cfg.k}


def open_label_log(out_dir: str | Path, model_name: str, fp: dict, cfg: LabelConfig,
                   problems: list[Problem]) -> RunLog:
    """The labelling run directory, resumed if present (the same for in-process and distributed runs)."""
    config = {"model": model_name, "fingerprint": fp, "label": recorded_settings(asdict(cfg)),
              "problems": [p.id for p in problems]}
    return RunLog(out_dir, config, items="labels.jsonl", units="problems.jsonl")


def run_labelling(model, tok, problems: list[Problem], cfg: LabelConfig, out_dir: str | Path,
                  model_name: str, progress=None, problems_per_batch: int = 1) -> RunLog:
    """Label ``problems`` into ``out_dir`` (``labels.jsonl`` + ``problems.jsonl``), resuming if present.

    ``model`` is a transformers model or a generation backend (``pathprune label --backend vllm``: the
    rollouts run on vLLM, with the same per-path random streams, so the labels are the same).
    ``problems_per_batch`` problems are labelled together (:func:`label_problems`: the same labels); a killed
    run loses at most those in flight."""
    if problems_per_batch < 1:
        raise PathpruneError(f"problems_per_batch must be >= 1, got {problems_per_batch}",
                             parameter="problems_per_batch", value=problems_per_batch)
    backend = as_backend(model, tok)
    fp = fingerprint(backend.model) if backend.in_process else fingerprint_files(backend.path)
    log = open_label_log(out_dir, model_name, fp, cfg, problems)
    provenance = label_provenance(model_name, fp, cfg)
    todo = [problem for problem in problems if problem.id not in log.done]
    for start in range(0, len(todo), problems_per_batch):
        for unit, records in label_problems(backend, tok, todo[start:start + problems_per_batch], cfg, provenance):
            log.append(unit, records)
            if progress:
                progress(1)
    return log


def read_labels(path: str | Path) -> list[dict]:
    """Prefix records from a pathprune ``labels.jsonl`` (or its run directory) or the official STOP format
    (``prefix_token_ids`` with ``soft_label`` / ``Soft_label``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "labels.jsonl"
    if not path.is_file():
        raise PathpruneError(f"label file not found: {path}")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise PathpruneError(f"{path}: line {n} is not valid JSON ({err.msg})") from None
        label = rec.get("soft_label", rec.get("Soft_label"))
        ids = rec.get("prefix_token_ids")
        if label is None or not isinstance(ids, list) or not ids:
            raise PathpruneError(f"{path}: line {n} needs prefix_token_ids and soft_label")
        rec["soft_label"] = float(label)
        rec.setdefault("problem_id", rec.get("id", f"line{n}"))
        rec.setdefault("outcomes", [int(rec["soft_label"] >= 0.5)])
        out.append(rec)
    if not out:
        raise PathpruneError(f"{path}: no records")
    return out
