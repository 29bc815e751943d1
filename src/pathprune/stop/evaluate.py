"""Score labelled prefixes offline with STOP and with the Type III baselines, on equal terms.

Type III scores need each prefix token's distribution; offline they come from
one re-encoding of the prefix (in the engine, Launch keeps them for free).
"""

from __future__ import annotations

import torch

from ..engine.backend import suppressed_ids
from ..engine.features import entropy, group_confidence, token_confidence
from ..engine.sampling import left_pad


def _generated_distributions(model, tokenizer, records: list[dict], batch_size: int):
    """Yield (record, (T, V) log-distributions, (T,) chosen log-probs) over each record's generated tokens,
    at temperature 1 with the engine's suppressed tokens removed (what Launch records)."""
    banned = suppressed_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(records), batch_size):
        chunk = records[start:start + batch_size]
        ids, mask = left_pad([r["prefix_token_ids"] for r in chunk], pad)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()
        logits[..., banned] = -torch.inf
        logp = logits.log_softmax(-1)
        width = ids.shape[1]
        for row, r in enumerate(chunk):
            n_gen = len(r["prefix_token_ids"]) - r.get("prompt_len", 1)
            steps = torch.arange(width - n_gen - 1, width - 1)  # positions predicting the generated tokens
            lp = logp[row, steps]
            yield r, lp, lp.gather(1, ids[row, steps + 1][:, None]).squeeze(1)


@torch.no_grad()
def prefix_logprobs(model, tokenizer, records: list[dict], batch_size: int = 64) -> list[list[float]]:
    """Each record's generated-token log-probabilities (``prompt_len`` marks where generation starts),
    as Launch records them: the input of a STOP head with ``head_features``."""
    return [chosen.tolist() for _, _, chosen in _generated_distributions(model, tokenizer, records, batch_size)]


@torch.no_grad()
def baseline_scores(model, tokenizer, records: list[dict], batch_size: int = 64, window: int = 16) -> dict:
    """{signal name: scores} for mean_logprob, neg_entropy, conf_mean, conf_lowest on the records' prefixes."""
    out = {"mean_logprob": [], "neg_entropy": [], "conf_mean": [], "conf_lowest": []}
    for _, lp, chosen in _generated_distributions(model, tokenizer, records, batch_size):
        ent = entropy(lp)
        conf = token_confidence(lp.topk(5, -1).values.tolist())
        out["mean_logprob"].append(chosen.mean().item())
        out["neg_entropy"].append(-ent.mean().item())
        out["conf_mean"].append(conf.mean().item())
        out["conf_lowest"].append(group_confidence(conf, window).min().item())
    return out
