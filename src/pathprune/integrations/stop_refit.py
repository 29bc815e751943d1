"""Re-fitting a STOP module during RL on the trainer's own rollouts (``PrunedRollout(refit_every=M)``).

The policy drifts away from the weights STOP was trained on; the rollouts' final rewards label their kept
prefixes for free. :func:`refit_stop` re-fits the head (or also the [STOP] embeddings and the adapter) on them
with the one training loop (:func:`pathprune.stop.scorer_training.fit`), held-out problems choosing the epoch;
:class:`RefitStop` gives the re-fitted module its own attachment so a fixed STOP of the same checkpoint is left
untouched.
"""

from __future__ import annotations

import tempfile
import zlib
from pathlib import Path

import torch

from ..errors import PathpruneError
from ..signals.stop_signal import StopSignal
from ..stop.scorer_training import Trainee, TrainConfig, fit

REFIT_CONFIG = TrainConfig(epochs=30, lr=3e-2, batch_size=64, loss="bce+listwise", select="within_auroc")
"""A re-fit's default: the head warm-started from the current one, ranked within each rollout group (the
listwise term), the epoch with the best within-group AUROC on held-out groups kept (measured in docs/rl.md)."""


class RefitStop(StopSignal):
    """A STOP signal with a module of its own on the model (so re-fitting it leaves a fixed STOP of the same
    checkpoint, e.g. one an evaluation reads, untouched)."""

    needs = frozenset({"cache", "logprobs"})

    def __init__(self, base: StopSignal) -> None:
        self.path = base.path
        self.name = f"{base.name}@refit"

    def module_for(self, model):
        from ..stop.checkpoint import load_stop

        attached = model.__dict__.setdefault("_pathprune_stop", {})
        key = "refit:" + str(self.path.resolve())
        if key not in attached:
            attached[key] = load_stop(model, self.path)
        return attached[key]


def _split(records: list[dict], share: float) -> tuple[list[dict], list[dict]]:
    """Train / validation records, split by problem (a hash of its id) so no group is on both sides."""
    val = [r for r in records if zlib.crc32(str(r["problem_id"]).encode()) % 1000 < share * 1000]
    train = [r for r in records if zlib.crc32(str(r["problem_id"]).encode()) % 1000 >= share * 1000]
    return train, val


def refit_stop(module, records: list[dict], pad_id: int, *, adapter: bool = False, cfg: TrainConfig | None = None,
               out: str | Path | None = None, val_share: float = 0.2) -> dict:
    """Re-fit a STOP module in place on ``records`` (``prefix_token_ids``, ``soft_label``, ``problem_id``, and
    ``logprobs`` of the generated prefix when the head reads them) with :func:`pathprune.stop.scorer_training.fit`.

    ``adapter=False`` trains the head only (its inputs, the last [STOP] hidden states, are computed once);
    ``adapter=True`` also the [STOP] embeddings and the critique adapter. The best epoch on the held-out
    problems is kept (loaded back into ``module``). Returns fit's ``{"history", "best", "seconds"}``.
    """
    cfg = cfg or REFIT_CONFIG
    train, val = _split(records, val_share)
    if not train or not val:
        raise PathpruneError(f"re-fitting STOP needs records of several problems, got {len(records)} records "
                             f"of {len({r['problem_id'] for r in records})}")
    needs_lp = module.feature_head is not None

    def lp(rows: list[dict]):
        return [r["logprobs"] for r in rows] if needs_lp else None

    def ids(rows: list[dict]):
        return [r["prefix_token_ids"] for r in rows]

    best: dict[int, torch.Tensor] = {}
    trained: list[torch.nn.Parameter] = []

    def build(device):
        if adapter:
            params = module.trainable_parameters()
            logits = lambda idx: module.logits_ids(ids([train[i] for i in idx]), pad_id, grad=True,  # noqa: E731
                                                   logprobs=lp([train[i] for i in idx]))
            val_probs = lambda: module.score_ids(ids(val), pad_id, logprobs=lp(val)).tolist()  # noqa: E731
        else:
            h_train, h_val = _head_inputs(module, train, pad_id, needs_lp), _head_inputs(module, val, pad_id, needs_lp)
            f_train = module.features(lp(train)).to(h_train.device) if needs_lp else None
            f_val = module.features(lp(val)).to(h_val.device) if needs_lp else None
            params = [*module.head.parameters()] + ([module.feature_head.weight] if needs_lp else [])

            def head(h, f):
                z = module.head(h).squeeze(-1)
                return z + module.feature_head(f).squeeze(-1) if f is not None else z

            logits = lambda idx: head(h_train[idx], None if f_train is None else f_train[idx])  # noqa: E731

            def val_probs():
                with torch.no_grad():
                    return torch.sigmoid(head(h_val, f_val)).tolist()

        def save(_record):
            best.clear()
            best.update({i: p.detach().clone() for i, p in enumerate(params)})

        trained[:] = params
        return Trainee(parameters=params, logits=logits, val_probs=val_probs, save=save)

    rng = torch.get_rng_state()  # fit seeds torch's global generator: the trainer's must not notice
    tmp = None
    if out is None:
        tmp = tempfile.TemporaryDirectory(prefix="pathprune-refit-")
        out = tmp.name
    try:
        result = fit(build, train, val, cfg, out)
    finally:
        torch.set_rng_state(rng)
        if tmp is not None:
            tmp.cleanup()
    with torch.no_grad():
        for i, p in enumerate(trained):
            p.copy_(best[i])
    return {**result, "train_records": len(train), "val_records": len(val)}


@torch.no_grad()
def _head_inputs(module, rows: list[dict], pad_id: int, needs_lp: bool, batch_size: int = 64) -> torch.Tensor:
    """The head's input (the last [STOP] position's final hidden state) for every record, no gradient."""
    captured: list[torch.Tensor] = []
    hook = module.head.register_forward_hook(lambda _m, inp, _out: captured.append(inp[0].detach()))
    try:
        for s in range(0, len(rows), batch_size):
            chunk = rows[s:s + batch_size]
            module.logits_ids([r["prefix_token_ids"] for r in chunk], pad_id,
                              logprobs=[r["logprobs"] for r in chunk] if needs_lp else None)
    finally:
        hook.remove()
    return torch.cat(captured)
