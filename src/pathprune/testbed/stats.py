"""Measure the testbed the way pruning sees it: per family and difficulty.

For every level: pass@1, the share of problems whose N paths are all right or
all wrong, majority-vote accuracy, and how correctness depends on an early
slip (a deviation within the first ``early`` fraction of the steps), split by
error kind (random slip vs wrong strategy).
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import asdict, dataclass

from ..engine.loop import sample
from ..engine.sampling import SamplingParams
from ..tasks.problem import Problem
from .families import FAMILIES
from .problems import suite


@dataclass
class LevelStats:
    family: str
    difficulty: int
    problems: int
    paths: int
    pass_at_1: float
    all_right: float
    all_wrong: float
    majority: float
    early_slip_share: float
    p_correct_early_slip: float | None
    p_correct_no_early_slip: float | None
    strategy_errors: float
    slip_errors: float
    mean_tokens: float

    def as_dict(self) -> dict:
        return asdict(self)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def analyse_level(problems: list[Problem], completions: list[list[list[str]]], early: float) -> LevelStats:
    """Aggregate one level's sampled paths (``completions[problem][path]`` = words)."""
    fam = FAMILIES[problems[0].meta["family"]]
    n_paths = correct = all_right = all_wrong = majority = tokens = 0
    early_n = early_ok = rest_n = rest_ok = 0
    kinds: Counter = Counter()
    for problem, paths in zip(problems, completions):
        spec, outcomes, answers = problem.meta["spec"], [], []
        for words in paths:
            a = fam.analyse(spec, words)
            ok = a.answer == problem.answer
            outcomes.append(ok)
            answers.append(a.answer)
            kinds[a.error_kind] += 1
            tokens += len(words)
            if a.slipped_before(early):
                early_n, early_ok = early_n + 1, early_ok + ok
            else:
                rest_n, rest_ok = rest_n + 1, rest_ok + ok
        n_paths += len(paths)
        correct += sum(outcomes)
        all_right += all(outcomes)
        all_wrong += not any(outcomes)
        top = Counter(a for a in answers if a is not None).most_common(1)
        majority += bool(top) and top[0][0] == problem.answer
    n = len(problems)
    return LevelStats(
        family=fam.name, difficulty=problems[0].meta["difficulty"], problems=n, paths=n_paths,
        pass_at_1=correct / n_paths, all_right=all_right / n, all_wrong=all_wrong / n, majority=majority / n,
        early_slip_share=early_n / n_paths,
        p_correct_early_slip=_ratio(early_ok, early_n), p_correct_no_early_slip=_ratio(rest_ok, rest_n),
        strategy_errors=kinds["strategy"] / n_paths, slip_errors=kinds["slip"] / n_paths,
        mean_tokens=tokens / n_paths,
    )


def testbed_stats(model, tokenizer, *, n_problems: int = 50, n_paths: int = 16, temperature: float = 1.0,
                  seed: int = 0, early: float = 0.35, split: str = "test",
                  families: tuple[str, ...] | None = None, levels: tuple[int, ...] | None = None,
                  batch_problems: int = 16, progress=None) -> list[LevelStats]:
    """Sample ``n_paths`` per problem on a testbed split and aggregate per level."""
    problems = suite(split, n_problems, seed, families, levels)
    params = SamplingParams(n=n_paths, temperature=temperature, max_new_tokens=160, seed=seed)
    words: dict[str, list[list[str]]] = {}
    for start in range(0, len(problems), batch_problems):
        chunk = problems[start:start + batch_problems]
        outs = sample(model, tokenizer, [tokenizer(p.prompt).input_ids for p in chunk], params,
                      problem_keys=[zlib.crc32(p.id.encode()) for p in chunk])
        for p, paths in zip(chunk, outs):
            words[p.id] = [tokenizer.convert_ids_to_tokens(ids) for ids in paths]
        if progress:
            progress(len(chunk))
    by_level: dict[tuple[str, int], list[Problem]] = {}
    for p in problems:
        by_level.setdefault((p.meta["family"], p.meta["difficulty"]), []).append(p)
    return [analyse_level(ps, [words[p.id] for p in ps], early) for ps in by_level.values()]
