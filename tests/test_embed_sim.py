"""embed_sim: sentence-embedding diversity (Type I) with the all-MiniLM-L6-v2 encoder the package ships."""

import pytest
import torch

from pathprune.engine import LiveBatch, SamplingParams
from pathprune.errors import PathpruneError
from pathprune.signals import CheckView, get_signal
from pathprune.signals.similarity import greedy_order
from pathprune.testbed.problems import generate
from pathprune.evaluation.problems import requests_for


@pytest.fixture(scope="module")
def encoder():
    from pathprune.signals.embedding import SentenceEncoder, default_encoder_dir

    return SentenceEncoder(default_encoder_dir())


def test_greedy_order_hand_computed():
    # mean similarity to the others: 0.5, 0.55, 0.15 -> 2 first; then max similarity to {2}: 0.1 < 0.2 -> 0
    assert greedy_order([[1, 0.9, 0.1], [0.9, 1, 0.2], [0.1, 0.2, 1]]) == [2, 0, 1]
    assert greedy_order([[1]]) == [0]


def test_encoder_is_mean_pooled_normalised_and_semantic(encoder):
    texts = ["The cat sits on the mat.", "A cat is sitting on the mat.", "Quarterly revenue rose by ten percent."]
    emb, tokens = encoder.embed(texts)
    for row, text in enumerate(texts):  # one unpadded sentence at a time, pooled by hand
        ids = encoder.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            h = encoder.model(**ids).last_hidden_state[0].mean(0)
        torch.testing.assert_close(emb[row], h / h.norm(), atol=1e-5, rtol=1e-4)
    assert tokens == sum(len(encoder.tokenizer(t).input_ids) for t in texts)
    sim = emb @ emb.T
    assert sim[0, 1] > 0.7 > 0.2 > sim[0, 2] and sim[1, 2] < 0.2


def test_embed_sim_signal_orders_and_charges(testbed, encoder):
    model, tok = testbed
    problems = generate("chain", 7, 1, "test") + generate("list", 6, 1, "test")
    batch = LiveBatch.launch(model, [tok(p.prompt).input_ids for p in problems], 4, tok.pad_token_id)
    batch.decode_until(14, SamplingParams(seed=4), eos=torch.tensor([tok.eos_token_id]), banned=torch.tensor([4]))
    view = CheckView(batch, requests_for(tok, problems), tok, stage=0)
    signal = get_signal("embed_sim")
    signal._encoder = encoder  # the same encoder as the fixture's, loaded once
    scores = signal.score(view)
    texts = view.texts()
    emb = encoder.embed(texts)[0]  # (pooling itself is checked against a hand computation above)
    for p in range(len(problems)):
        rows = [r for r, rec in enumerate(batch.records) if rec.problem_index == p]
        vecs = emb[rows]
        order = greedy_order([[round(x, 5) for x in line] for line in (vecs @ vecs.T).double().tolist()])
        assert [scores[rows[i]].item() for i in order] == [-k for k in range(len(rows))]
    assert view.reencoded_tokens == sum(len(encoder.tokenizer(t).input_ids) for t in texts)
    assert get_signal("embed_sim").taxonomy == "I"
    with pytest.raises(PathpruneError, match="encoder directory not found"):
        get_signal("embed_sim:/nonexistent/encoder")
