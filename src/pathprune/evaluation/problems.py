"""Problems in, graded results out: the step that joins the engine's outputs with reference answers.

The engine never sees a reference answer (:class:`~pathprune.engine.Pruner`
takes plain prompts); this module turns benchmark problems into engine requests
(with the reference attached for label-reading signals such as the oracle) and
grades what comes back.

    >>> results = solve(Pruner("testbed", signal="stop", schedule="16:4"), problems,
    ...                 SamplingParams(n=8, max_new_tokens=80))      # doctest: +SKIP
    >>> results[0].correct, results[0].output.usage.generated          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..engine.pruner import Pruner, RequestOutput
from ..engine.request import Request, encode_prompt, question_of
from ..engine.sampling import SamplingParams
from ..tasks.grading import answers_equal
from ..tasks.problem import Problem


def requests_for(tokenizer, problems: Sequence[Problem]) -> list[Request]:
    """One engine request per problem, keyed by the problem id (its paths do not depend on the batch),
    with its reference answer attached for label-reading signals."""
    return [Request(p.id, tuple(encode_prompt(tokenizer, p.input)), question_of(tokenizer, p.input), p.answer_kind,
                    reference=p.answer) for p in problems]


@dataclass
class GradedResult:
    """A problem with the engine's output for it, graded."""

    problem: Problem
    output: RequestOutput
    correct: bool
    """The voted answer equals the reference."""
    path_correct: list[bool]
    """Per path (``output.paths`` order); a pruned path has no answer and counts as wrong."""

    @property
    def paths(self):
        return self.output.paths

    @property
    def answer(self) -> str | None:
        return self.output.answer

    @property
    def usage(self):
        return self.output.usage

    def path_rows(self) -> list[dict]:
        """One JSON-ready row per path."""
        return [{"problem_id": self.problem.id, "path_index": p.index, "tokens": p.num_tokens, "text": p.text,
                 "answer": p.answer, "correct": ok, "finished": p.finished, "kept": p.kept,
                 "pruned_at": p.pruned_at, "scores": p.scores}
                for p, ok in zip(self.output.paths, self.path_correct)]

    def as_dict(self) -> dict:
        out = self.output
        return {"problem_id": self.problem.id, "reference": self.problem.answer, "answer": out.answer,
                "correct": self.correct, "usage": out.usage.as_dict(), "times": out.times.as_dict(),
                "memory": out.memory, **({"prefix_cache": out.prefix_cache} if out.prefix_cache else {})}


def grade_output(problem: Problem, output: RequestOutput) -> GradedResult:
    kind = problem.answer_kind
    return GradedResult(problem, output, answers_equal(problem.answer, output.answer, kind),
                        [answers_equal(problem.answer, p.answer, kind) for p in output.paths])


def solve(pruner: Pruner, problems: Sequence[Problem], params: SamplingParams | None = None, *,
          progress: Callable[[int], None] | None = None, **overrides) -> list[GradedResult]:
    """Run ``problems`` through the pruner and grade every path and vote; ``overrides`` go to
    :meth:`Pruner.run` (``signal=``, ``schedule=``)."""
    outputs = pruner.run(requests_for(pruner.tokenizer, problems), params, progress=progress, **overrides)
    return [grade_output(p, o) for p, o in zip(problems, outputs)]
