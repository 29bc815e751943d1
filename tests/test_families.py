"""Testbed task families: hand-computed problems, the teacher, trace analysis, splits."""

import random

import pytest

from pathprune.errors import PathpruneError
from pathprune.testbed.families import FAMILIES, ChainProblem, ListProblem, NoiseConfig
from pathprune.tasks import wordproblems
from pathprune.tasks.splits import SPLITS, check_split
from pathprune.testbed.problems import generate, split_of, suite
from pathprune.testbed.train import make_batch, teacher_example
from pathprune.testbed.tokenizer import VOCAB

CHAIN, LIST = FAMILIES["chain"], FAMILIES["list"]
CLEAN = NoiseConfig(p_slip_hard=0, p_slip_easy=0, p_strategy_per_trigger=0, p_doubt_after_slip=0,
                    p_doubt_false_alarm=0)


def test_chain_hand_computed():
    p = ChainProblem(3, (("+", 4), ("*", 7), ("-", 2)))
    assert " ".join(CHAIN.prompt(p)) == "C 3 + 4 * 7 - 2 ="
    assert CHAIN.values(p) == [7, 9, 7]  # 7, 49 mod 10, 9 - 2
    assert CHAIN.teacher(p, random.Random(0), CLEAN) == (
        "S0 3 + 4 = 7 ; 7 * 7 = 9 ; 9 - 2 = 7 ; A 7".split())
    # the misconception: 2 - 5 as |2 - 5| = 3 instead of 7 (mod 10)
    assert CHAIN.apply(2, "-", 5, strategy=0) == 7 and CHAIN.apply(2, "-", 5, strategy=1) == 3


def test_list_hand_computed():
    p = ListProblem((3, 1, 4, 2), (("rot",), ("swp", "1", "3"), ("inc", "4"), ("rev",)))
    assert " ".join(LIST.prompt(p)) == "L 3 1 4 2 | rot swp 1 3 inc 4 rev ="
    # rot: 1 4 2 3 ; swp 1 3: 2 4 1 3 ; inc 4: 2 4 1 4 ; rev: 4 1 4 2
    assert LIST.values(p) == [(1, 4, 2, 3), (2, 4, 1, 3), (2, 4, 1, 4), (4, 1, 4, 2)]
    assert LIST.solve(p) == "4 1 4 2"
    assert LIST.apply((3, 1, 4, 2), ("rot",), strategy=1) == (2, 3, 1, 4)  # rotates right


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_clean_teacher_is_always_right(family):
    fam, rng = FAMILIES[family], random.Random(1)
    for d in range(1, fam.max_difficulty + 1):
        p = fam.make(rng, d)
        a = fam.analyse(p, fam.teacher(p, rng, CLEAN))
        assert a.answer == fam.solve(p) and a.first_error_step is None and a.strategy == 0


def test_analysis_finds_first_slip_and_strategy():
    p = ChainProblem(3, (("+", 4), ("-", 9), ("+", 1)))  # 7, 8 (wraps), 9
    slip = "S0 3 + 4 = 8 ; 8 - 9 = 9 ; 9 + 1 = 0 ; A 0".split()
    a = CHAIN.analyse(p, slip)
    assert (a.first_error_step, a.error_kind, a.answer) == (0, "slip", "0")
    strategy = "S1 3 + 4 = 7 ; 7 - 9 = 2 ? ; 2 + 1 = 3 ; A 3".split()
    a = CHAIN.analyse(p, strategy)
    assert (a.first_error_step, a.error_kind, a.strategy, a.doubts) == (1, "strategy", 1, 1)
    assert not a.slipped_before(0.35) and a.slipped_before(0.7)  # step 2 of 3 ends at 67 % of the chain
    assert CHAIN.analyse(p, slip).slipped_before(0.34) and not CHAIN.analyse(p, slip).slipped_before(0.3)
    truncated = "S0 3 + 4 = 7 ; 7 -".split()
    a = CHAIN.analyse(p, truncated)
    assert a.answer is None and a.first_error_step == 1


def test_noisy_teacher_rates_follow_config():
    """The wrong strategy needs at least two triggers and is capped at p_strategy_max."""
    rng, noise = random.Random(0), NoiseConfig()
    p_many = ChainProblem(5, tuple(("-", 9) for _ in range(6)))
    p_none = ChainProblem(5, tuple(("+", 1) for _ in range(6)))
    s_many = sum(CHAIN.teacher(p_many, rng, noise)[0] == "S1" for _ in range(2000)) / 2000
    s_none = sum(CHAIN.teacher(p_none, rng, noise)[0] == "S1" for _ in range(2000)) / 2000
    assert s_none == 0 and abs(s_many - noise.p_strategy_max) < 0.05


def test_splits_are_disjoint_and_deterministic():
    prompts = {s: {p.prompt for p in suite(s, 40, seed=3)} for s in SPLITS}
    assert all(prompts.values())
    assert not (prompts["train"] & prompts["test"]) and not (prompts["train"] & prompts["validation"])
    assert not (prompts["validation"] & prompts["test"])
    for s, ps in prompts.items():
        assert all(split_of(p) == s for p in ps)
    again = [p.prompt for p in generate("list", 5, 10, "test", seed=3)]
    assert again == [p.prompt for p in generate("list", 5, 10, "test", seed=3)]
    assert len(set(again)) == 10


def test_one_split_rule_for_testbed_and_word_problems():
    """The 80 / 10 / 10 SHA-256 rule is shared and pinned: a change would move problems between splits."""
    assert [split_of(t) for t in "abcdefghij"] == ["train"] * 5 + ["validation"] + ["train"] * 3 + ["test"]
    counts = {s: sum(split_of(str(i)) == s for i in range(10000)) for s in SPLITS}
    assert counts == {"train": 7950, "validation": 1035, "test": 1015}
    assert generate("chain", 4, 2, "test", seed=0)[0].id == "chain-d4-d6f8341f99"
    assert wordproblems.generate(2, 1, "validation", seed=0)[0].id == "wp-inventory-s2-b2d538e9e4"
    for bad in (lambda: check_split("dev"), lambda: generate("chain", 2, 1, "dev"),
                lambda: wordproblems.generate(1, 1, "dev")):
        with pytest.raises(PathpruneError, match=r"^unknown split 'dev'; choose from \['train', 'validation', 'test'\]$"):
            bad()


def test_small_levels_never_duplicate():
    probs = generate("chain", 1, 500, "test")
    assert 5 < len(probs) < 500 and len({p.prompt for p in probs}) == len(probs)


def test_training_data_comes_from_train_split_only():
    rng = random.Random(0)
    for _ in range(300):
        ids, n_prompt = teacher_example(rng, NoiseConfig())
        prompt = " ".join(VOCAB[i] for i in ids[1:n_prompt])
        assert split_of(prompt) == "train"
    batch = make_batch(random.Random(0), 8, NoiseConfig())
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    assert VOCAB.index("[STOP]") not in batch["input_ids"].unique().tolist()


def test_bad_family_and_difficulty():
    with pytest.raises(PathpruneError, match="unknown testbed family"):
        generate("sudoku", 1, 1)
    with pytest.raises(PathpruneError, match=r"difficulty for 'list' must be in \[1, 8\], got 9"):
        generate("list", 9, 1)
