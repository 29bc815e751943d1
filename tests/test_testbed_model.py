"""The shipped testbed checkpoint: a standard HF model, its tokenizer, and the properties it promises."""


from pathprune.engine.loop import sample
from pathprune.engine.sampling import SamplingParams
from pathprune.testbed.problems import generate
from pathprune.testbed.stats import analyse_level


def test_is_a_standard_qwen2_with_hf_tokenizer(testbed):
    model, tok = testbed
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 5e6
    text = "C 3 + 4 * 7 = S0 3 + 4 = 7 ; 7 * 7 = 9 ? ; A 9"
    ids = tok(text).input_ids
    assert ids[0] == tok.bos_token_id and len(ids) == len(text.split()) + 1
    assert tok.decode(ids, skip_special_tokens=True) == text
    stop = tok.convert_tokens_to_ids("[STOP]")
    assert "[STOP]" in tok.all_special_tokens and tok("[STOP]").input_ids[1:] == [stop]
    assert tok.convert_tokens_to_ids("bogus") == tok.unk_token_id
    # every word of the vocabulary survives a save/load round trip as one token
    from pathprune.testbed.tokenizer import WORDS, build_tokenizer

    line = " ".join(WORDS)
    assert tok(line).input_ids == build_tokenizer()(line).input_ids and len(tok(line).input_ids) == len(WORDS) + 1


def _greedy_accuracy(model, tok, problems):
    paths = sample(model, tok, [tok(p.prompt).input_ids for p in problems],
                   SamplingParams(n=1, temperature=0, max_new_tokens=160))
    words = [[tok.convert_ids_to_tokens(p[0])] for p in paths]
    return analyse_level(problems, words, 0.35).pass_at_1


def test_checkpoint_learned_both_families(testbed):
    """Greedy decoding follows the teacher's modal (correct) path even on long chains."""
    model, tok = testbed
    for family, d in (("chain", 4), ("list", 4), ("chain", 8)):
        assert _greedy_accuracy(model, tok, generate(family, d, 20, "test")) >= 0.8, (family, d)


def test_sampling_shows_difficulty_and_early_slip_effect(testbed):
    model, tok = testbed
    easy, hard = generate("chain", 1, 20, "test"), generate("chain", 10, 30, "test")
    stats = []
    for problems in (easy, hard):
        paths = sample(model, tok, [tok(p.prompt).input_ids for p in problems],
                       SamplingParams(n=8, temperature=1.0, max_new_tokens=160, seed=0))
        stats.append(analyse_level(problems, [[tok.convert_ids_to_tokens(x) for x in ps] for ps in paths], 0.35))
    easy_s, hard_s = stats
    assert easy_s.pass_at_1 > 0.85
    assert 0.3 < hard_s.pass_at_1 < 0.8
    assert hard_s.p_correct_early_slip < hard_s.p_correct_no_early_slip - 0.3
