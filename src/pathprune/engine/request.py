"""What the engine is asked: prompts as token ids, each with the key that seeds its paths.

A user's prompt is text, chat messages or token ids (:data:`Prompt`); the engine
encodes it once into a :class:`Request`. No reference answer is needed to
generate; evaluation attaches one (``reference``) only for signals that read
labels (the Monte-Carlo oracle).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from ..errors import PathpruneError

Prompt = Union[str, Sequence[Mapping[str, str]], Sequence[int]]
"""Text, chat messages (``[{"role": ..., "content": ...}]``) or token ids."""


@dataclass(frozen=True)
class Request:
    """One prompt as the engine runs it."""

    id: str
    """Keys the prompt's random streams: same id and seed, same paths, in any batch."""
    prompt_ids: tuple[int, ...]
    question: str
    """The question as text (external judges read it): the prompt, the last user message, or decoded ids."""
    answer_kind: str = "math"
    """How the voted answer is extracted (:func:`pathprune.tasks.answers.extract_answer`)."""
    reference: str | None = None
    """Reference answer, only for signals that read labels; generation never needs it."""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def prompt_id(ids: Sequence[int]) -> str:
    """A request id from the prompt's token ids: same prompt, same id, so the same paths for a given
    seed whatever else shares the batch."""
    return hashlib.sha256(str(list(ids)).encode()).hexdigest()[:16]


def prompt_kind(prompt: Prompt) -> str:
    """``"text"``, ``"messages"`` or ``"ids"``; a one-line error for anything else."""
    if isinstance(prompt, str):
        return "text"
    if isinstance(prompt, Sequence) and prompt:
        if all(isinstance(m, Mapping) and "content" in m for m in prompt):
            return "messages"
        if all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            return "ids"
    raise PathpruneError("a prompt is text, a non-empty list of chat messages ({'role', 'content'}) "
                         f"or a non-empty list of token ids; got {type(prompt).__name__} {str(prompt)[:60]!r}")


def encode_prompt(tokenizer, prompt: Prompt) -> list[int]:
    """Token ids of a prompt: text as is, messages through the chat template (joined contents without one)."""
    kind = prompt_kind(prompt)
    if kind == "ids":
        return list(prompt)
    if kind == "messages":
        messages = [dict(m) for m in prompt]
        if getattr(tokenizer, "chat_template", None):
            return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                      return_dict=False))
        return tokenizer("\n\n".join(m["content"] for m in messages)).input_ids
    return tokenizer(prompt).input_ids


def question_of(tokenizer, prompt: Prompt) -> str:
    """The question a judge reads: the text, the last user message, or the decoded ids."""
    kind = prompt_kind(prompt)
    if kind == "text":
        return prompt
    if kind == "messages":
        users = [m["content"] for m in prompt if m.get("role") == "user"]
        return users[-1] if users else prompt[-1]["content"]
    return tokenizer.decode(list(prompt), skip_special_tokens=True)
