"""Request bodies: the OpenAI shapes plus pathprune's parallel-reasoning extension fields.

Unknown fields are refused (a 400 naming the field) rather than silently
ignored, so a client never believes a setting took effect when it did not.
OpenAI fields that clients send at their neutral value (``n=1``,
``presence_penalty=0``, ``logprobs=false``...) are accepted at that value only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Aggregation = Literal["majority", "score_weighted"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamOptions(_Strict):
    include_usage: bool = False


class ParallelOptions(_Strict):
    """Extension fields (the ``extra_body`` of the ``openai`` client)."""

    paths: int | None = Field(None, ge=1, description="N, parallel paths per prompt (server default otherwise).")
    keep: int | None = Field(None, ge=1, description="k, paths resumed after the checkpoint.")
    checkpoint: int | None = Field(None, ge=1, description="Checkpoint length in generated tokens.")
    schedule: str | None = Field(None, description='"L:k[,L:k...]" cascade (a stage may be stepM/L:k: at the M-th '
                                 'reasoning step, at most L tokens), or "none"; excludes keep/checkpoint.')
    step_delimiter: str | None = Field(None, min_length=1, description="Where a reasoning step ends, for stepM/L "
                                       "stages (matched on decoded text; default a newline).")
    signal: str | None = Field(None, description="Pruning signal, e.g. stop, mean_logprob, conf_lowest.")
    aggregation: Aggregation = "majority"
    return_paths: bool = Field(False, description="Add per-path details (score, kept, answer) to the response.")
    answer_kind: Literal["math", "choice", "testbed", "text"] | None = None
    top_k: int = Field(0, ge=0)
    timeout: float | None = Field(None, gt=0, description="Seconds before a 504 (at most the server's limit).")

    # neutral-only OpenAI fields
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: bool | int | None = None
    user: str | None = None

    @model_validator(mode="after")
    def _neutral(self):
        if self.n != 1:
            raise ValueError("n must be 1: the response is the voted path; ask for parallel paths with `paths`")
        if self.presence_penalty or self.frequency_penalty:
            raise ValueError("presence_penalty and frequency_penalty are not supported")
        if self.logprobs:
            raise ValueError("logprobs are not supported")
        if self.schedule is not None and (self.keep is not None or self.checkpoint is not None):
            raise ValueError("set either schedule or keep/checkpoint, not both")
        return self


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str
    name: str | None = None


class ChatCompletionRequest(ParallelOptions):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(ParallelOptions):
    model: str
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    echo: bool = False

    @model_validator(mode="after")
    def _no_echo(self):
        if self.echo:
            raise ValueError("echo is not supported")
        return self

    @property
    def token_limit(self) -> int | None:
        return self.max_tokens

    def prompts(self) -> list[str | list[int]]:
        """One entry per prompt: text, or token ids."""
        p = self.prompt
        if isinstance(p, str) or (p and isinstance(p[0], int)):
            return [p]
        return list(p)


class ClassifyRequest(BaseModel):
    """The official STOP evaluation client's body (vLLM's /classify with an assess tail)."""

    model_config = ConfigDict(extra="ignore")  # vLLM clients send more pooling options; none change STOP

    model: str
    input: list[list[int]] = Field(min_length=1)
    add_special_tokens: bool = False
    truncate_prompt_tokens: int | None = Field(None, ge=1)
    assess_tail_len: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _checks(self):
        if self.add_special_tokens:
            raise ValueError("add_special_tokens must be false: inputs are token ids that already end in [STOP]")
        return self
