"""The live batch: every unfinished path of several problems, with one shared KV cache.

Rows are paths. The batch owns the per-row attention mask (left padding of the
prompts), the position counter, the next-token logits and the cache, and keeps
them aligned through the three operations the engine needs:

* :meth:`LiveBatch.decode_until` samples until every live path has L tokens
  (paths that emit EOS leave the batch at once, their cache rows freed);
* :meth:`LiveBatch.probe` appends tokens (e.g. ``[STOP]``) on a temporary
  extension of the cache, returns their hidden states and crops the cache back,
  bit for bit, so nothing is ever re-encoded;
* :meth:`LiveBatch.select` keeps some rows and drops the rest of the cache.

The loop is written by hand rather than calling ``model.generate`` because
Check and Resume need the live cache, per-row masks and position counters
(``../shared/reference/cpu-environment.md``: explicit 2-D mask, cumsum
positions, finished rows removed rather than fed pad tokens that stay visible).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .features import entropy as token_entropy
from .sampling import SamplingParams, Workspace, choose_tokens, left_pad, path_keys, path_uniforms


@dataclass
class PathRecord:
    """Everything Launch keeps about one path (independent of its batch row)."""

    problem_index: int
    path_index: int
    tokens: list[int] = field(default_factory=list)
    """Generated tokens (EOS included when the path finished)."""
    logprobs: list[float] = field(default_factory=list)
    """Log-probability of each generated token under the model (temperature 1)."""
    top_logprobs: list[list[float]] = field(default_factory=list)
    """The k largest log-probabilities at each step (for confidence signals)."""
    entropies: list[float] = field(default_factory=list)
    """Shannon entropy (nats) of each step's next-token distribution."""
    finished: bool = False
    """True once the path emitted EOS."""
    scores: list[float] = field(default_factory=list)
    """One score per checkpoint the path reached alive."""
    checked_at: list[int] = field(default_factory=list)
    """Generated tokens the path had at each checkpoint it reached alive (a step checkpoint's differ by path)."""
    pruned_at: int | None = None
    """Index of the stage that pruned this path (None: kept)."""


def cache_keyword(model) -> str:
    """The forward's cache argument: ``cache`` from transformers 5.24 on, ``past_key_values`` before
    (5.24 still accepts the old name until 5.40, with a warning on every call)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def rows_by_problem(records: list[PathRecord]) -> list[list[int]]:
    """Row indices grouped by problem (first-seen order), each group in path-index order."""
    groups: dict[int, list[int]] = {}
    for row, rec in enumerate(records):
        groups.setdefault(rec.problem_index, []).append(row)
    return [sorted(rows, key=lambda r: records[r].path_index) for rows in groups.values()]


class LiveBatch:
    """Unfinished paths in one batch, with their cache. Built by :meth:`launch`."""

    in_process = True
    """The model and its cache live here (see :attr:`~pathprune.engine.backend.Backend.in_process`)."""

    def __init__(self, model, records, keys, cache, mask, next_pos, logits):
        self.model = model
        self.records: list[PathRecord] = records
        self.keys = keys            # (R,) per-path random keys (see sampling.path_keys)
        self.cache = cache
        self.mask = mask            # (R, T) 1 = real token; prompts are left-padded
        self.next_pos = next_pos    # (R, 1) position id of the next token
        self.logits = logits        # (R, V) next-token logits
        self.check_tokens = 0       # tokens appended by probes (charged to the signal)
        self._cache_kw = cache_keyword(model)
        self._workspace = Workspace()  # the sampler's float64 buffers, reused every step

    def __len__(self) -> int:
        return len(self.records)

    @property
    def device(self) -> torch.device:
        return self.mask.device

    @classmethod
    @torch.no_grad()
    def launch(cls, model, prompts: list[list[int]], n: int, pad_id: int, seed: int = 0,
               problem_keys: list[int] | None = None) -> LiveBatch:
        """Prefill each prompt once and share its cache rows across its ``n`` paths.

        ``problem_keys`` (default: the prompt indices) seed each problem's paths,
        so a problem gets the same paths whatever batch it is sampled in.
        """
        from transformers import DynamicCache

        device = next(model.parameters()).device
        ids, mask = (t.to(device) for t in left_pad(prompts, pad_id))
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=model.config)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
                    **{cache_keyword(model): cache})
        cache.batch_repeat_interleave(n)
        records = [PathRecord(i, j) for i in range(len(prompts)) for j in range(n)]
        keys = path_keys(seed, problem_keys if problem_keys is not None else list(range(len(prompts))), n)
        return cls(model, records, keys, cache, mask.repeat_interleave(n, 0),
                   positions[:, -1:].repeat_interleave(n, 0) + 1,
                   out.logits[:, -1].float().repeat_interleave(n, 0))

    def _forward(self, tokens: torch.Tensor, fed: torch.Tensor | None = None) -> None:
        """Feed one token per row. ``fed`` (bool per row): rows outside it are paused: their token is a
        placeholder under attention mask 0 at an unchanged position, and they keep their logits, so the pause
        leaves them as they were (a hole in the cache that no later token attends to)."""
        column = torch.ones_like(self.mask[:, :1]) if fed is None else fed.to(self.mask.dtype)[:, None]
        self.mask = torch.cat([self.mask, column], dim=-1)
        out = self.model(input_ids=tokens[:, None], attention_mask=self.mask, position_ids=self.next_pos,
                         use_cache=True, **{self._cache_kw: self.cache})
        logits = out.logits[:, -1].float()
        self.logits = logits if fed is None else torch.where(fed[:, None], logits, self.logits)
        self.next_pos = self.next_pos + column

    @torch.no_grad()
    def decode_until(self, length: int, params: SamplingParams, eos: torch.Tensor,
                     banned: torch.Tensor, top_logprobs: int = 5, feed_last: bool = True,
                     early: Callable[[PathRecord, list[int]], bool] | None = None) -> list[PathRecord]:
        """Sample until every live path has ``length`` generated tokens, or has paused earlier where
        ``early(record, tokens)`` first holds (a step checkpoint; checked on entry and after every token).

        Paths may sit at different lengths (each draws from its own stream at its own step). A path that
        pauses while others decode waits with its cache and logits untouched (see :meth:`_forward`). With
        ``feed_last`` a pausing path's last token is fed, so the cache covers its whole prefix and its next
        logits are ready (a checkpoint); without it (the end) a path leaves the batch once its token is chosen.
        Returns the records of paths that finished (EOS) on the way.
        """
        finished: list[PathRecord] = []
        banned, ends = banned.to(self.device), set(eos.tolist())

        def pauses(rec: PathRecord) -> bool:
            return len(rec.tokens) >= length or (early is not None and early(rec, rec.tokens))

        paused = torch.tensor([pauses(rec) for rec in self.records], dtype=torch.bool)
        while self.records and not bool(paused.all()):
            live = (~paused).nonzero().squeeze(-1)
            whole = len(live) == len(self.records)
            logits = self.logits if whole else self.logits[live.to(self.device)]
            if len(banned):
                logits[:, banned] = float("-inf")
            logp = torch.log_softmax(logits, dim=-1)
            steps = torch.tensor([len(self.records[r].tokens) for r in live.tolist()], dtype=torch.long)
            tokens = choose_tokens(logits, params, path_uniforms(self.keys if whole else self.keys[live], steps),
                                   self._workspace)
            chosen = logp.gather(1, tokens[:, None]).squeeze(1).tolist()
            top = logp.topk(top_logprobs, dim=-1).values.tolist() if top_logprobs else None
            entropy = token_entropy(logp).tolist() if top_logprobs else None
            row_tokens = torch.zeros(len(self.records), dtype=torch.long, device=self.device)
            row_tokens[live.to(self.device)] = tokens
            fed, leave = ~paused, []
            for j, r in enumerate(live.tolist()):
                rec = self.records[r]
                rec.tokens.append(tokens[j].item())
                rec.logprobs.append(chosen[j])
                if top is not None:
                    rec.top_logprobs.append(top[j])
                    rec.entropies.append(entropy[j])
                if rec.tokens[-1] in ends:
                    rec.finished = True
                    finished.append(rec)
                    leave.append(r)
                elif pauses(rec):
                    paused[r] = True
                    if not feed_last:
                        leave.append(r)
            if leave:  # finished paths (and, at the end, paths with nothing left) free their cache rows now
                keep = [r for r in range(len(self.records)) if r not in set(leave)]
                self.select(keep)
                paused, fed, row_tokens = paused[keep], fed[keep], row_tokens[keep]
                if not keep:
                    break
            self._forward(row_tokens, None if bool(fed.all()) else fed)
        return finished

    def select(self, rows: torch.Tensor | list[int]) -> None:
        """Keep only ``rows`` (in that order); the other rows' cache is freed at once."""
        idx = torch.as_tensor(rows, dtype=torch.long, device=self.device)
        self.cache.batch_select_indices(idx)
        self.mask, self.next_pos, self.logits = self.mask[idx], self.next_pos[idx], self.logits[idx]
        self.keys = self.keys[idx.cpu()]
        self.records = [self.records[i] for i in idx.tolist()]

    def probe(self, input_ids: torch.Tensor | None = None, *, inputs_embeds: torch.Tensor | None = None,
              model=None, grad: bool = False):
        """Run appended tokens over the cached prefixes and restore the cache.

        Args:
            input_ids: (m,) or (R, m) token ids to append to every row.
            inputs_embeds: (R, m, H) embeddings instead of ids (learned tokens).
            model: the module to run (e.g. a PEFT model whose adapter is active
                only on these tokens); defaults to the base model.
            grad: keep the autograd graph (training); the restored cache is
                detached either way.

        Returns the model output (``hidden_states`` included) for the m tokens.
        """
        rows = len(self)
        if input_ids is not None:
            input_ids = input_ids.to(self.device)
            if input_ids.dim() == 1:
                input_ids = input_ids[None].expand(rows, -1)
        m = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        mask = torch.cat([self.mask, self.mask.new_ones(rows, m)], dim=-1)
        positions = self.next_pos + torch.arange(m, device=self.device)
        lengths = [layer.keys.shape[-2] for layer in self.cache.layers]
        try:
            with (torch.enable_grad() if grad else torch.no_grad()):
                out = (model or self.model)(input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=mask,
                                            position_ids=positions, use_cache=True, output_hidden_states=True,
                                            **{self._cache_kw: self.cache})
        finally:  # restore the cache even when the forward fails half-way through the layers
            for layer, length in zip(self.cache.layers, lengths):
                keys, values = layer.keys[..., :length, :], layer.values[..., :length, :]
                layer.keys, layer.values = keys.detach(), values.detach()
        self.check_tokens += rows * m
        return out

    def split(self) -> list[LiveBatch]:
        """One single-row batch per row, its left padding cut off (the cache rows copied).

        With :meth:`stack` this lets a frozen model's prefix cache be computed once and
        regrouped freely afterwards (STOP's training epochs reuse it instead of re-encoding)."""
        out = []
        for r, rec in enumerate(self.records):
            pad = int((self.mask[r] == 0).long().cumprod(0).sum())  # leading zeros only
            layers = [(layer.keys[r:r + 1, :, pad:].clone(), layer.values[r:r + 1, :, pad:].clone())
                      for layer in self.cache.layers]
            out.append(LiveBatch(self.model, [rec], self.keys[r:r + 1], _cache_from(self.model, layers),
                                 self.mask[r:r + 1, pad:], self.next_pos[r:r + 1], self.logits[r:r + 1]))
        return out

    @classmethod
    def stack(cls, batches: list[LiveBatch]) -> LiveBatch:
        """The rows of ``batches`` (same model) in one batch, left-padded to the longest; the inverse of
        :meth:`split`. Padded cache entries are zeros behind a 0 mask, so they never receive attention."""
        if not batches:
            raise ValueError("stack needs at least one batch")
        width = max(b.mask.shape[1] for b in batches)

        def left(t: torch.Tensor, dim: int) -> torch.Tensor:
            gap = width - t.shape[dim]
            if not gap:
                return t
            shape = list(t.shape)
            shape[dim] = gap
            return torch.cat([t.new_zeros(shape), t], dim=dim)

        layers = [(torch.cat([left(b.cache.layers[i].keys, -2) for b in batches]),
                   torch.cat([left(b.cache.layers[i].values, -2) for b in batches]))
                  for i in range(len(batches[0].cache.layers))]
        first = batches[0]
        return cls(first.model, [rec for b in batches for rec in b.records], torch.cat([b.keys for b in batches]),
                   _cache_from(first.model, layers), torch.cat([left(b.mask, 1) for b in batches]),
                   torch.cat([b.next_pos for b in batches]), torch.cat([b.logits for b in batches]))

    def free(self) -> None:
        """Drop every row and its cache now (the batch is empty afterwards)."""
        self.select([])

    def cache_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for layer in self.cache.layers for t in (layer.keys, layer.values))


def _cache_from(model, layers: list[tuple[torch.Tensor, torch.Tensor]]):
    """A DynamicCache holding the given (keys, values) per layer."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    for i, (k, v) in enumerate(layers):
        cache.update(k, v, i)
    return cache
