"""Can STOP's trainer fit labels on a given model at all? Records for a memorisation check.

Two distinct prefixes of the model's own paths per problem (cut at ``length`` generated tokens), one labelled
1 and the other 0: a target nothing but memorisation reaches (the constant predictor's loss is ln 2), and the
cheapest evidence that the [STOP] tokens, the adapter and the head learn on this model. Identical prefixes
cannot carry different labels, so a problem whose paths share their prefix gives no pair.
``benchmarks/stop_overfit.py`` compares training recipes on these; ``tests/test_stop_learns.py`` holds the
default recipe to them on SmolLM2 and on the testbed.
"""

from __future__ import annotations

from ..engine import SamplingParams, encode_prompt, sample
from ..tasks.problem import Problem


def paired_prefixes(model, tokenizer, problems: list[Problem], count: int, length: int, n: int = 6,
                    temperature: float = 0.7, chunk: int = 24) -> list[dict]:
    """Up to ``count`` label records: the first two distinct of ``n`` sampled prefixes of each problem in turn
    (labels 0 then 1), sampled ``chunk`` problems at a time with each problem's position as its random key."""
    out: list[dict] = []
    for start in range(0, len(problems), chunk):
        group = problems[start:start + chunk]
        prompts = [encode_prompt(tokenizer, p.input) for p in group]
        paths = sample(model, tokenizer, prompts, SamplingParams(n=n, temperature=temperature,
                                                                 max_new_tokens=length, seed=0),
                       problem_keys=list(range(start, start + len(group))))
        for problem, prompt, own in zip(group, prompts, paths):
            distinct = list(dict.fromkeys(tuple(p) for p in own))[:2]
            if len(distinct) < 2:
                continue
            for label, path in enumerate(distinct):
                out.append({"problem_id": problem.id, "prefix_token_ids": prompt + list(path),
                            "soft_label": float(label), "outcomes": [label], "prefix_len": len(path),
                            "prompt_len": len(prompt)})
            if len(out) >= count:
                return out[:count]
    return out
