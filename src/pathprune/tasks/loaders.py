"""Load benchmark files (JSON list or JSONL) in the schemas users actually have.

Recognised layouts (detected per record, so mixed files work):

* AIME 2024 (``problem``, ``answer``, ``year``, ``aime_number``, ``problem_number``),
  AIME 2025 / HMMT (``id``, ``problem``, ``answer``), BRUMO (``problem_idx``, ...);
* multiple choice with ``options`` (a dict, or its Python/JSON text) and a letter
  ``answer``, e.g. ZebraLogic;
* GSM8K (``question``, ``answer`` ending in ``#### 72``);
* records with ready ``messages`` or ``prompt`` fields (optionally ``answer_kind``:
  math, choice, testbed or text).

    >>> problems = load_benchmark("../shared/benchmarks/aime_2025.json")  # doctest: +SKIP
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from ..errors import PathpruneError
from .problem import Problem

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CHOICE_INSTRUCTION = 'Please show your choice in the answer field with only the choice letter, e.g., "ANSWER": "C".'


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSON list, a JSON object holding one list, or JSONL."""
    path = Path(path)
    if not path.is_file():
        raise PathpruneError(f"benchmark file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    data.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise PathpruneError(f"{path}: line {n} is not valid JSON ({err.msg})") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise PathpruneError(f"{path}: expected a list of records or an object holding one list")
        data = lists[0]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise PathpruneError(f"{path}: expected a list of JSON objects")
    return data


def _options(raw: Any) -> dict[str, str] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raw = ast.literal_eval(raw)  # ZebraLogic writes Python dict reprs; literal_eval runs no code
    if isinstance(raw, list):
        raw = {chr(ord("A") + i): v for i, v in enumerate(raw)}
    if not isinstance(raw, dict):
        raise ValueError("options must be a mapping or a list")
    return {str(k): str(v) for k, v in raw.items()}


def _record_id(rec: dict[str, Any], index: int, stem: str) -> str:
    if "aime_number" in rec and "problem_number" in rec:
        return f"{rec.get('year', stem)}-{rec['aime_number']}-{rec['problem_number']}"
    for key in ("id", "problem_idx", "problem_id", "idx", "unique_id"):
        if rec.get(key) not in (None, ""):
            return f"{stem}-{rec[key]}"
    return f"{stem}-{index}"


def record_to_problem(rec: dict[str, Any], index: int, stem: str) -> Problem:
    """One benchmark record to a :class:`Problem` (raises ValueError naming the gap)."""
    question = rec.get("problem", rec.get("question", rec.get("Question")))
    answer = rec.get("answer", rec.get("Answer", rec.get("final_answer")))
    if answer is None:
        raise ValueError("no 'answer' field")
    answer = str(answer).strip()
    meta = {"source": stem, **{k: rec[k] for k in ("difficulty", "year", "problem_type", "domain") if k in rec}}
    pid = _record_id(rec, index, stem)
    kind = rec.get("answer_kind", "math")
    if kind not in ("math", "choice", "testbed", "text"):
        raise ValueError(f"unknown answer_kind {kind!r}")
    if "messages" in rec:
        return Problem(pid, answer, kind, messages=tuple(rec["messages"]), meta=meta)
    if question is None and "prompt" in rec:
        return Problem(pid, answer, kind, prompt=str(rec["prompt"]), meta=meta)
    if question is None:
        raise ValueError("no 'problem' or 'question' field")
    options = _options(rec.get("options", rec.get("choices")))
    if options:
        if answer.upper() not in options:
            raise ValueError(f"answer {answer!r} is not one of the options {sorted(options)}")
        listing = "\n".join(f"{k}. {v}" for k, v in options.items())
        content = f"{question.rstrip()}\n\nOptions:\n{listing}\n\n{CHOICE_INSTRUCTION}"
        return Problem(pid, answer.upper(), "choice", messages=({"role": "user", "content": content},),
                       meta={**meta, "options": options})
    if "####" in answer:  # GSM8K: the worked solution precedes "#### <number>"
        answer = answer.rsplit("####", 1)[1].strip().replace(",", "")
    content = f"{question.rstrip()}\n{MATH_INSTRUCTION}"
    return Problem(pid, answer, "math", messages=({"role": "user", "content": content},), meta=meta)


HUB_PREFIX = "hf:"


def hub_records(spec: str) -> tuple[list[dict[str, Any]], str]:
    """Records of a Hugging Face hub dataset ``hf:NAME[:SPLIT]`` (needs ``datasets`` and a reachable hub)."""
    name, _, split = spec[len(HUB_PREFIX):].partition(":")
    try:
        import datasets
    except ImportError:
        raise PathpruneError(f"{spec}: hub datasets need the `datasets` package (pip install datasets)") from None
    try:
        data = datasets.load_dataset(name, split=split or "test")
    except Exception as err:  # offline, unknown name or split: one line, not the hub client's traceback
        raise PathpruneError(f"{spec}: cannot load from the hub ({' '.join(str(err).split())[:200]})") from None
    return [dict(r) for r in data], name.rsplit("/", 1)[-1]


def load_benchmark(path: str | Path, limit: int | None = None) -> list[Problem]:
    """Load every record of a benchmark file (or a hub dataset ``hf:NAME[:SPLIT]``) as a :class:`Problem`.

    Raises :class:`PathpruneError` naming the file and record on malformed input.
    """
    if str(path).startswith(HUB_PREFIX):
        records, stem = hub_records(str(path))
        path = Path(stem)
    else:
        path = Path(path)
        records = read_records(path)
    out: list[Problem] = []
    seen: set[str] = set()
    for i, rec in enumerate(records[:limit]):
        try:
            problem = record_to_problem(rec, i, path.stem)
        except (ValueError, SyntaxError) as err:
            raise PathpruneError(f"{path}: record {i}: {err}") from None
        if problem.id in seen:
            problem = Problem(f"{problem.id}#{i}", problem.answer, problem.answer_kind, problem.prompt,
                              problem.messages, problem.meta)
        seen.add(problem.id)
        out.append(problem)
    if not out:
        raise PathpruneError(f"{path}: no records")
    return out
