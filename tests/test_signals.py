"""Built-in signals: definitions against hand-computed cases, then end to end in the engine."""

import math

import pytest
import torch

from pathprune.engine import SamplingParams
from pathprune.errors import PathpruneError
from pathprune.signals import available_signals, get_signal
from pathprune.signals.confidence import group_confidence, token_confidence
from pathprune.signals.similarity import diversity_order, jaccard, ngrams
from pathprune.testbed.problems import generate
from conftest import run_pruner


def test_token_and_group_confidence_hand_computed():
    conf = token_confidence([[-0.1, -2.3], [-0.5, -1.0]])
    assert torch.allclose(conf, torch.tensor([1.2, 0.75], dtype=torch.float64))
    c = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    assert group_confidence(c, 2).tolist() == [1.5, 2.5, 3.5]
    assert group_confidence(c, 10).tolist() == [2.5]
    lowest, bottom, tail = (get_signal(f"{n}:2") for n in ("conf_lowest", "conf_bottom10", "conf_tail"))
    assert lowest.reduce(c) == 1.5 and bottom.reduce(c) == 1.5 and tail.reduce(c) == 3.5
    assert get_signal("conf_mean").reduce(c) == 2.5
    assert get_signal("conf_lowest").taxonomy == "III" and get_signal("jaccard").taxonomy == "I"


def test_jaccard_diversity_hand_computed():
    a, b, c = [1, 2, 3, 4], [1, 2, 3, 5], [7, 8, 9, 7]
    assert ngrams(a, 2) == {(1, 2), (2, 3), (3, 4)}
    assert jaccard(ngrams(a, 2), ngrams(b, 2)) == 0.5  # {12, 23} of {12, 23, 34, 35}
    # C is least similar to the rest; then A and B tie (similarity 0 to C): lower index first
    assert diversity_order([a, b, c], 2) == [2, 0, 1]
    assert diversity_order([a, a, c], 2) == [2, 0, 1]


@pytest.mark.parametrize("spec", ["random", "mean_logprob", "conf_mean", "conf_lowest:8", "conf_bottom10",
                                  "conf_tail:8", "neg_entropy", "jaccard", "jaccard:2"])
def test_every_signal_prunes_within_problems(testbed, spec):
    model, tok = testbed
    problems = generate("chain", 9, 2, "test") + generate("list", 7, 1, "test")
    params = SamplingParams(n=8, temperature=1.0, max_new_tokens=160, seed=0)
    results = run_pruner(problems, model, tok, spec, "16:3", params)
    for r in results:
        kept = [p for p in r.paths if p.kept]
        assert len(kept) == 3 and r.usage.check == 0 and r.usage.pruned_prefix == 5 * 16
        tie = lambda x: float(f"{x:.5g}")  # noqa: E731  (the engine's tie tolerance)
        assert min(tie(p.scores[0]) for p in kept) >= max(tie(p.scores[0]) for p in r.paths if not p.kept)
        assert all(math.isfinite(p.scores[0]) for p in r.paths)


def test_recorded_entropies_are_distribution_entropies(testbed):
    """neg_entropy's score equals minus the mean entropy of a re-encoded path's next-token distributions."""
    from pathprune.engine.backend import suppressed_ids

    model, tok = testbed
    problem = generate("chain", 8, 1, "test")[0]
    results = run_pruner([problem], model, tok, "neg_entropy", "12:2", SamplingParams(n=4, max_new_tokens=160))
    prompt = tok(problem.prompt).input_ids
    path = results[0].paths[0]
    tokens = tok(path.text, add_special_tokens=False).input_ids[:12]
    logits = model(torch.tensor([prompt + tokens])).logits[0, len(prompt) - 1:-1]
    logits[:, suppressed_ids(model, tok)] = -torch.inf
    logp = logits.log_softmax(-1)
    entropy = -torch.where(logp > -torch.inf, logp.exp() * logp, 0.0).sum(-1)
    assert path.scores[0] == pytest.approx(-entropy.mean().item(), abs=1e-5)


def test_signal_registry_errors():
    assert {"random", "jaccard", "conf_lowest", "neg_entropy"} <= set(available_signals())
    with pytest.raises(PathpruneError, match="did you mean 'conf_tail'"):
        get_signal("conf_tial")
    with pytest.raises(PathpruneError, match="needs an integer window"):
        get_signal("conf_lowest:abc")
    with pytest.raises(PathpruneError, match="window must be >= 1"):
        get_signal("conf_tail:0")
