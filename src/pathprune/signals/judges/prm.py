"""Process reward models (PRMs) in the Qwen2.5-Math-PRM convention, loaded without remote code.

Layout of ``Qwen/Qwen2.5-Math-PRM-7B`` (``Qwen2ForProcessRewardModel``, shipped upstream as
custom code): a Qwen2 decoder (weights ``model.*``) and a two-way score head applied at every
position, ``score = Sequential(Linear(H, H), ReLU, Linear(H, 2))`` (weights ``score.0.*`` and
``score.2.*``); ``lm_head.*``, if present, is ignored. The model is rebuilt here from
``config.json`` and safetensors weights (single file or sharded with an index); pickled
weights are refused.

Convention (model card): the response's steps are each followed by the separator token
``<extra_0>``; the conversation is rendered with the tokenizer's chat template (system
prompt, user question, assistant = steps), and the reward of step i is
``softmax(logits at the i-th separator)[1]``, i.e. p(positive). Without a chat template the
input is ``question + "\\n\\n" + steps``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

from ...errors import PathpruneError

STEP_SEPARATOR = "<extra_0>"
SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."


def split_steps(text: str, split: str = "blank") -> list[str]:
    """Steps of a (partial) solution: ``blank`` splits at blank lines, ``line`` at newlines,
    anything else at that literal string. Steps are stripped; empty ones are dropped. The last
    step of a prefix may be cut mid-way: it is kept (the PRM judges the text so far)."""
    if split == "blank":
        parts = re.split(r"\n[ \t]*\n", text)
    elif split == "line":
        parts = text.split("\n")
    elif split:
        parts = text.split(split)
    else:
        raise PathpruneError("the step split must be 'blank', 'line' or a non-empty separator string")
    return [p.strip() for p in parts if p.strip()]


class PRM(nn.Module):
    """A Qwen2 process reward model: decoder + two-way score head at every position."""

    def __init__(self, config):
        super().__init__()
        from transformers import Qwen2Model

        self.config = config
        self.model = Qwen2Model(config)
        h = config.hidden_size
        self.score = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2))
        self.tokenizer = None
        self.separator = STEP_SEPARATOR
        self.separator_id: int | None = None
        self.system = SYSTEM_PROMPT

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, 2) logits at every position."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.score(hidden)

    @property
    def context(self) -> int | None:
        return getattr(self.config, "max_position_embeddings", None)

    def build_input(self, question: str, steps: list[str]) -> list[int]:
        """Token ids of ``question`` with ``steps``, each step followed by the separator."""
        steps = [s.replace(self.separator, " ") for s in steps] or [""]  # a stray separator would add a step
        response = "".join(s + self.separator for s in steps)
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            messages = [{"role": "system", "content": self.system}, {"role": "user", "content": question},
                        {"role": "assistant", "content": response}]
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        else:
            text = f"{question}\n\n{response}"
        ids = list(tok(text).input_ids)
        found = ids.count(self.separator_id)
        if found != len(steps):
            raise PathpruneError(f"the PRM input has {found} step separators for {len(steps)} steps "
                                 f"(does the chat template or tokenizer alter {self.separator!r}?)")
        if self.context and len(ids) > self.context:
            raise PathpruneError(f"PRM input of {len(ids)} tokens exceeds the PRM's context of {self.context}")
        return ids

    @torch.no_grad()
    def step_rewards(self, inputs: list[list[int]], batch_size: int = 16) -> list[list[float]]:
        """p(positive) at every separator of every input (right-padded batches: padding is never attended)."""
        device = next(self.parameters()).device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out: list[list[float]] = []
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start:start + batch_size]
            width = max(map(len, chunk))
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, seq in enumerate(chunk):
                ids[row, :len(seq)] = torch.tensor(seq)
                mask[row, :len(seq)] = 1
            probs = self(ids.to(device), mask.to(device)).float().softmax(-1)[..., 1].cpu()
            for row, seq in enumerate(chunk):
                at = torch.tensor(seq) == self.separator_id
                out.append(probs[row, :len(seq)][at].tolist())
        return out


def _check_files(path: Path) -> tuple[object, dict[str, Path], PRM]:
    """Config, ``{tensor: file}`` and an empty (meta) PRM, after checking config.json and every weight
    file's header against the layout config.json implies (no weight is read)."""
    from accelerate import init_empty_weights
    from transformers import Qwen2Config

    from ...io.tensors import safetensors_files, safetensors_shapes

    if not path.is_dir():
        raise PathpruneError(f"prm: checkpoint directory not found: {path}")
    if not (path / "config.json").is_file():
        raise PathpruneError(f"{path} is not a PRM directory (no config.json)")
    try:
        raw = json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as err:
        raise PathpruneError(f"{path}/config.json is not valid JSON ({err.msg})") from None
    if not isinstance(raw, dict) or not raw:
        raise PathpruneError(f"{path}/config.json is empty or not a JSON object")
    archs = raw.get("architectures") or []
    if raw.get("model_type") != "qwen2" or (archs and "Qwen2ForProcessRewardModel" not in archs):
        raise PathpruneError(f"{path} is not a Qwen2 process reward model (model_type {raw.get('model_type')!r}, "
                             f"architectures {archs})")
    try:
        config = Qwen2Config.from_dict({k: v for k, v in raw.items() if k != "auto_map"})
        with init_empty_weights(include_buffers=False):
            prm = PRM(config)
    except (TypeError, ValueError) as err:
        raise PathpruneError(f"{path}/config.json: not a usable Qwen2 config ({str(err).splitlines()[0]})") from None
    shapes: dict[str, tuple[int, ...]] = {}
    where: dict[str, Path] = {}
    for file in safetensors_files(path):
        for name, shape in safetensors_shapes(file).items():
            if not name.startswith("lm_head."):
                shapes[name], where[name] = shape, file
    expected = prm.state_dict()
    missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing or unexpected:
        detail = "; ".join(f"{what} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                           for what, names in (("missing", missing), ("unexpected", unexpected)) if names)
        raise PathpruneError(f"{path}: weights do not match the Qwen2 PRM layout ({detail})")
    for name, tensor in expected.items():
        if tuple(shapes[name]) != tuple(tensor.shape):
            raise PathpruneError(f"{where[name]}: {name} has shape {tuple(shapes[name])}, "
                                 f"config.json implies {tuple(tensor.shape)}")
    return config, where, prm


def _tokenizer(path: Path, separator: str):
    """The PRM's tokenizer and the id of its step separator token."""
    from ...models.loading import load_tokenizer

    tokenizer = load_tokenizer(path)
    sep_id = tokenizer.convert_tokens_to_ids(separator)
    if sep_id is None or sep_id == tokenizer.unk_token_id or separator not in tokenizer.get_vocab():
        raise PathpruneError(f"{path}: the tokenizer has no step separator token {separator!r}")
    return tokenizer, sep_id


def check_prm(path: str | Path, *, separator: str = STEP_SEPARATOR) -> None:
    """Check a PRM directory as a whole without loading its weights: config.json, every safetensors
    header against the layout it implies, and the tokenizer's step separator."""
    path = Path(path).expanduser()
    _check_files(path)
    _tokenizer(path, separator)


def load_prm(path: str | Path, *, separator: str = STEP_SEPARATOR, dtype=torch.float32, device="cpu") -> PRM:
    """Load a PRM directory (``config.json``, safetensors weights, tokenizer with ``separator``)."""
    from safetensors.torch import load_file

    path = Path(path).expanduser()
    _, where, prm = _check_files(path)
    state: dict[str, torch.Tensor] = {}
    for file in sorted(set(where.values())):
        state.update({k: v for k, v in load_file(file).items() if k in where})
    prm.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    prm.tokenizer, prm.separator_id = _tokenizer(path, separator)
    prm.separator = separator
    return prm.to(device).eval()
