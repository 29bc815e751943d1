"""Type II signals (external, learnable): separate judge models that re-read each prefix as text.

* ``prm:DIR[:split=blank|line|TEXT][:agg=last|min|mean|prod][:sep=TOKEN]``: a process reward
  model in the Qwen2.5-Math-PRM convention (the paper's Type II baseline, Qwen2.5-Math-PRM-7B
  scoring prefixes as in LaBoR's early pruning). The decoded prefix is split into steps,
  the steps are joined by the separator, and the prefix's score is the reward of its last
  step (``agg=last``, LaBoR style) or the min / mean / product of its step rewards.
* ``judge:DIR``: the paper's "Type II-retrain" control, a separate model with a
  classification head trained on STOP's Monte-Carlo labels (``pathprune train --judge``).

Both re-encode every prefix from scratch (no KV reuse); the re-encoded judge tokens are
charged with :meth:`CheckView.charge` (``calls`` = one judge call per scored prefix).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...engine.contract import CheckView, Signal
from ...engine.registry import register_signal
from ...errors import PathpruneError

AGGREGATES = {"last": lambda r: r[-1], "min": min, "mean": lambda r: sum(r) / len(r),
              "prod": lambda r: float(torch.tensor(r, dtype=torch.float64).prod())}


def parse_options(name: str, text: str, allowed: set[str]) -> tuple[str, dict[str, str]]:
    """``HEAD[:key=value...]`` → (head, options). Options are separated by ``:`` (never ``,``, which
    separates signals in lists such as ``--signals a,b``); trailing ``key=value`` parts with a known key
    are options, the rest is the head (so a path may itself contain ``:``)."""
    parts = text.split(":")
    options: dict[str, str] = {}
    while len(parts) > 1 and "=" in parts[-1]:
        key, _, value = parts.pop().partition("=")
        if key not in allowed:
            raise PathpruneError(f"{name}: unknown option {key + '=' + value!r} "
                                 f"(options: {', '.join(f'{k}=' for k in sorted(allowed))})")
        options.setdefault(key, value)
    return ":".join(parts), options


def parse_path_options(name: str, arg: str | None, allowed: set[str]) -> tuple[Path | None, dict[str, str]]:
    """``PATH[:key=value...]`` → (path, options), the path checked to be a directory."""
    if not arg:
        return None, {}
    head, options = parse_options(name, arg, allowed)
    path = Path(head).expanduser()
    if not path.is_dir():
        raise PathpruneError(f"{name}: checkpoint directory not found: {path}")
    return path, options


def question_text(view: CheckView, problem_index: int) -> str:
    """The question as the generator saw it: the prompt text, or the last user message of a chat."""
    return view.requests[problem_index].question


TESTBED_JUDGE = Path(__file__).resolve().parent / "checkpoints" / "testbed"


@register_signal("prm")
class PrmSignal(Signal):
    """Process reward model (Qwen2.5-Math-PRM convention) re-reading the prefix's steps (`prm:DIR[:agg=..]`)."""

    name, source, learnable = "prm", "external", True
    needs = frozenset({"text"})

    def __init__(self, arg: str | None = None) -> None:
        self.path, opts = parse_path_options("prm", arg, {"split", "agg", "sep"})
        self.split = opts.get("split", "blank")
        self.agg = opts.get("agg", "last")
        self.separator = opts.get("sep", "<extra_0>")
        if self.agg not in AGGREGATES:
            raise PathpruneError(f"prm: agg must be one of {', '.join(AGGREGATES)}, got {self.agg!r}")
        if not self.split:
            raise PathpruneError("prm: split must be 'blank', 'line' or a non-empty separator string")
        self._prm = None

    def validate(self) -> None:
        """The PRM directory checked whole without loading its weights (config, headers, separator)."""
        from .prm import check_prm

        if self.path is None:
            raise PathpruneError("prm needs a PRM directory: --signal prm:DIR")
        check_prm(self.path, separator=self.separator)

    def model(self, device="cpu"):
        from .prm import load_prm

        if self.path is None:
            raise PathpruneError("prm needs a PRM directory: --signal prm:DIR")
        if self._prm is None:
            self._prm = load_prm(self.path, separator=self.separator, device=device)
        return self._prm

    def inputs(self, view: CheckView) -> list[list[int]]:
        from .prm import split_steps

        prm = self.model(view.batch.device)
        return [prm.build_input(question_text(view, r.problem_index), split_steps(text, self.split))
                for r, text in zip(view.records, view.texts())]

    def score(self, view: CheckView) -> torch.Tensor:
        inputs = self.inputs(view)
        rewards = self.model(view.batch.device).step_rewards(inputs)
        view.charge(tokens=sum(map(len, inputs)))
        return torch.tensor([AGGREGATES[self.agg](r) for r in rewards], dtype=torch.float32)


@register_signal("judge")
class JudgeSignal(Signal):
    """Type II-retrain: a separate model + head trained on Monte-Carlo labels, re-reading the text (`judge:DIR`)."""

    name, source, learnable = "judge", "external", True
    needs = frozenset({"text"})

    def __init__(self, arg: str | None = None) -> None:
        self.path, _ = parse_path_options("judge", arg, set())
        self._judge = None

    def validate(self) -> None:
        """The judge directory checked whole without loading it (config, backbone files, head shapes)."""
        from .retrain import check_judge

        check_judge(self.path or TESTBED_JUDGE)

    def model(self, device="cpu"):
        from .retrain import load_judge

        if self.path is None:  # the judge shipped for the testbed model (see docs/signals.md)
            self.path = TESTBED_JUDGE
        if self._judge is None:
            self._judge = load_judge(self.path, device=device)
        return self._judge

    def texts(self, view: CheckView) -> list[str]:
        """What the judge reads: the generator's prompt ids and prefix, decoded (as in training)."""
        from .retrain import judge_text

        prompts = {i: view.tokenizer.decode(list(r.prompt_ids), skip_special_tokens=True)
                   for i, r in enumerate(view.requests)}
        return [judge_text(prompts[r.problem_index], text) for r, text in zip(view.records, view.texts())]

    def score(self, view: CheckView) -> torch.Tensor:
        judge = self.model(view.batch.device)
        inputs = judge.encode(self.texts(view))
        view.charge(tokens=sum(map(len, inputs)))
        return judge.score_ids(inputs)
