"""Pruned rollouts for TRL's GRPOTrainer (pathprune.integrations.trl): GRPO steps on the testbed with the rollout,
group sizes, forwarded fields, token accounting against a hand count, STOP re-fits, one-line errors."""

import json
import os

import pytest
import torch

pytest.importorskip("trl")
pytest.importorskip("datasets")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from datasets import Dataset  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from pathprune.errors import PathpruneError  # noqa: E402
from pathprune.integrations.trl import FIELDS, pruned_rollout, refit_stop  # noqa: E402
from pathprune.signals.stop_signal import TESTBED_STOP  # noqa: E402
from pathprune.stop.checkpoint import load_stop  # noqa: E402
from pathprune.tasks.answers import extract_answer  # noqa: E402
from pathprune.tasks.grading import answers_equal  # noqa: E402
from pathprune.testbed.problems import generate  # noqa: E402
from conftest import load_testbed  # noqa: E402

L = 10  # the checkpoint: testbed completions at these levels are 20-40 tokens long


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: these tiny models gain nothing from two, and lose much on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _problems(k=4):
    return generate("chain", 3, k, "train") + generate("list", 3, k, "train")


def _trainer(rollout, reward, G, tmp_path, prompts_per_step=2, steps=2, **args):
    model, tok = load_testbed()
    model.train()
    data = Dataset.from_list([{"prompt": p.prompt, "answer": p.answer} for p in _problems()])
    cfg = GRPOConfig(output_dir=str(tmp_path / "grpo"), num_generations=G, per_device_train_batch_size=prompts_per_step * G,
                     max_completion_length=80, learning_rate=1e-3, max_steps=steps, logging_steps=1, report_to="none",
                     use_cpu=True, save_strategy="no", seed=0, disable_tqdm=True, **args)
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=cfg, train_dataset=data, processing_class=tok,
                          rollout_func=rollout)
    return model, tok, trainer


class Spy:
    """A rollout_func that records what the pruned rollout returned, and a reward that records what it got."""

    def __init__(self, rollout):
        self.rollout, self.outs, self.seen = rollout, [], []

    def __call__(self, prompts, trainer):
        out = self.rollout(prompts, trainer)
        self.outs.append((list(prompts), out))
        return out

    def reward(self, prompts, completions, answer, **kw):
        self.seen.append({k: kw[k] for k in FIELDS})
        return [float(answers_equal(a, extract_answer(c, "testbed"), "testbed")) for c, a in zip(completions, answer)]


def test_grpo_steps_with_drop_rollout_groups_fields_and_hand_counted_tokens(tmp_path):
    N, G = 6, 3
    rollout = pruned_rollout("stop", f"{L}:{G}", n=N, pruned="drop")
    spy = Spy(rollout)
    model, tok, trainer = _trainer(spy, rollout.reward(spy.reward), G, tmp_path)
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # GRPO trained the policy
    n_stop = rollout.signal.module_for(rollout.generation_model).config.n_stop
    generated = check = 0
    assert len(spy.outs) == 2 and len(spy.seen) == 2
    for (prompts, out), seen in zip(spy.outs, spy.seen):
        assert len(prompts) == 2 * G and set(out) == {"prompt_ids", "completion_ids", "logprobs", *FIELDS}
        assert all(len(out[k]) == 2 * G for k in out)
        assert seen == {k: out[k] for k in FIELDS}  # every field reached the reward function
        for g in range(2):
            rows = range(g * G, (g + 1) * G)
            assert len({tuple(out["prompt_ids"][i]) for i in rows}) == 1
            assert out["prompt_ids"][g * G] == tok(prompts[g * G]).input_ids
            assert len({out["path_index"][i] for i in rows}) == G  # G distinct paths of one group
            for i in rows:
                assert not out["pruned"][i] and out["pruned_at"][i] is None
                assert out["path_tokens"][i] == len(out["completion_ids"][i]) == len(out["logprobs"][i])
                assert out["completion_ids"][i][-1] == tok.eos_token_id  # finished, kept paths
                assert out["group_launched"][i] == N and out["group_dropped"][i] == N - G
                assert len(out["checkpoint_scores"][i]) == 1 and 0 < out["checkpoint_scores"][i][0] < 1
            # hand count: the G returned completions, plus N - G pruned prefixes of exactly L tokens each
            group = out["group_tokens"][g * G]
            assert group == sum(out["path_tokens"][i] for i in rows) + (N - G) * L
            assert out["group_check_tokens"][g * G] == N * n_stop  # N paths alive at the checkpoint x [STOP] tokens
            generated, check = generated + group, check + N * n_stop
    t = rollout.totals
    assert (t.calls, t.groups, t.launched, t.returned, t.pruned) == (2, 4, 4 * N, 4 * G, 4 * (N - G))
    assert (t.generated, t.check) == (generated, check)
    assert t.returned_tokens == sum(len(c) for _, out in spy.outs for c in out["completion_ids"])
    rollout.sync(model)  # the generation copy holds the trained weights
    copy = dict(rollout.generation_model.named_parameters())
    for name, p in model.named_parameters():
        parts = name.rsplit(".", 1)
        key = name if name in copy else f"{parts[0]}.base_layer.{parts[1]}"
        assert torch.equal(copy[key], p)


def test_truncate_keeps_pruned_prefixes_with_the_fixed_reward(tmp_path):
    G, k = 4, 2
    rollout = pruned_rollout("mean_logprob", f"{L}:{k}", pruned_reward=-0.5)  # truncate: the default
    spy = Spy(rollout)
    rewards = []
    wrapped = rollout.reward(spy.reward)

    def reward(**kw):
        rewards.append(wrapped(**kw))
        return rewards[-1]

    reward.__name__ = "reward"
    _, tok, trainer = _trainer(spy, reward, G, tmp_path, steps=1)
    trainer.train()
    (_, out), = spy.outs
    assert sum(out["pruned"]) == 2 * (G - k) and out["group_dropped"] == [0] * (2 * G)
    for i, cut in enumerate(out["pruned"]):
        assert out["path_tokens"][i] == len(out["completion_ids"][i])
        if cut:
            assert len(out["completion_ids"][i]) == L and out["completion_ids"][i][-1] != tok.eos_token_id
            assert rewards[0][i] == -0.5 and out["pruned_at"][i] == 0
        else:
            assert rewards[0][i] in (0.0, 1.0)
    for g in range(2):  # the group's tokens are exactly its completions' tokens
        rows = range(g * G, (g + 1) * G)
        assert out["group_tokens"][g * G] == sum(out["path_tokens"][i] for i in rows)
    assert rollout.totals.check == 0  # a Type III signal appends nothing


def test_unpruned_rollout_through_the_same_engine(tmp_path):
    rollout = pruned_rollout(None, None)
    spy = Spy(rollout)
    _, _, trainer = _trainer(spy, rollout.reward(spy.reward), 3, tmp_path, steps=1)
    trainer.train()
    (_, out), = spy.outs
    assert len(out["completion_ids"]) == 6 and not any(out["pruned"]) and out["checkpoint_scores"] == [[]] * 6
    assert rollout.totals.generated == sum(out["path_tokens"]) and rollout.totals.pruned == 0


def test_drop_when_paths_end_before_the_checkpoint():
    """Paths that end before the checkpoint are kept beside the k resumed ones (the engine's rule); the group
    then takes the lowest path indices and the others count as dropped, their tokens spent all the same."""
    model, tok = load_testbed()  # a fresh copy: other files attach STOP's PEFT adapter to the shared fixture
    rollout = pruned_rollout("stop", "30:2", n=5, pruned="drop", model=model, tokenizer=tok, max_new_tokens=60)
    out = rollout([p.prompt for p in generate("chain", 1, 2, "train") for _ in range(2)])
    assert out["path_index"] == [0, 1, 0, 1] and out["group_dropped"] == [3] * 4 and not any(out["pruned"])
    assert out["checkpoint_scores"] == [[]] * 4 and out["group_check_tokens"] == [0] * 4  # nobody reached L
    records = [rec for batch in rollout._recorder.batches for rec in batch]  # every launched path
    assert len(records) == 10 and all(rec.finished and len(rec.tokens) < 30 for rec in records)
    for g in range(2):  # hand count: all 5 launched paths of the group, 3 of them not returned
        assert out["group_tokens"][2 * g] == sum(len(rec.tokens) for rec in records if rec.problem_index == g)
    assert rollout.totals.generated == sum(out["group_tokens"][::2]) and rollout.totals.returned == 4


def test_generation_copy_scores_like_a_fresh_model_after_the_trainer_patched_the_policy(tmp_path):
    """GRPOTrainer patches its model (forward, hooks); a deep copy would bypass STOP's adapter."""
    rollout = pruned_rollout("stop", f"{L}:2", n=4, pruned="drop")
    model, tok, _ = _trainer(rollout, rollout.reward(lambda **kw: [0.0] * len(kw["prompts"])), 2, tmp_path)
    ids = [tok("C 3 + 4 * 7 - 2 = S0 3 + 4 = 7 ; 7 * 7 = 9").input_ids, tok("L 3 1 4 2 | rot = S0 rot > 1").input_ids]
    copy = rollout.sync(model, tok)
    fresh, _ = load_testbed()
    torch.testing.assert_close(rollout.signal.module_for(copy).score_ids(ids, 0),
                               load_stop(fresh, TESTBED_STOP).score_ids(ids, 0))


def test_refit_trains_its_own_head_and_leaves_the_fixed_stop_alone():
    model, tok = load_testbed()
    rollout = pruned_rollout("stop", f"{L}:4", n=4, pruned="truncate", model=model, tokenizer=tok, max_new_tokens=60,
                             refit_every=1)
    problems = _problems(6)
    answers = {p.prompt: p.answer for p in problems}
    reward = rollout.reward(lambda prompts, completions, **_: [
        float(answers_equal(answers[p], extract_answer(c, "testbed"), "testbed")) for p, c in zip(prompts, completions)])
    prompts = [p.prompt for p in problems for _ in range(4)]
    out = rollout(prompts)
    reward(prompts=prompts, completions=[tok.decode(c, skip_special_tokens=True) for c in out["completion_ids"]],
           **{k: out[k] for k in FIELDS})
    records = rollout._labelled
    assert len(records) == sum(n > L for n in out["path_tokens"]) and {r["prefix_len"] for r in records} == {L}
    copy = rollout.generation_model
    fixed = load_stop(copy, TESTBED_STOP)  # a second module on the copy, as an evaluation would attach
    refit = rollout.signal.module_for(copy)
    head = [p.detach().clone() for p in fixed.head.parameters()]
    start = refit.head.weight.detach().clone()
    result = refit_stop(refit, records, tok.pad_token_id)
    assert result["train_records"] + result["val_records"] == len(records) and result["best"]["epoch"] >= 1
    assert not torch.equal(refit.head.weight, start)
    assert all(torch.equal(a, b) for a, b in zip(head, fixed.head.parameters()))
    rollout(prompts)  # the next call re-fits (refit_every=1) from the labelled rollouts
    assert len(rollout.refits) == 1 and rollout.refits[0]["records"] == len(records)


@pytest.mark.parametrize("kwargs, message", [
    (dict(pruned="cut"), "pruned must be one of drop, truncate"),
    (dict(n=8, schedule="16:8"), "need n > 8"),
    (dict(n=16, schedule="16:t=0.5"), "needs top-k stages"),
    (dict(n=16, schedule="16:8", signal="mean_logprob", refit_every=4), "refit_every re-fits a STOP signal"),
    (dict(n=16, schedule="16:8", refit_every=0), "refit_every must be an integer >= 1"),
    (dict(signal="nope"), "unknown signal 'nope'"),
    (dict(signal=None, schedule="16:8"), "a pruning schedule needs a signal"),
    (dict(n=16, pruned_reward=float("nan")), "pruned_reward must be a finite number"),
])
def test_bad_arguments_fail_on_one_line(kwargs, message):
    args = dict(signal="stop", schedule="16:8", n=16, pruned="drop") | kwargs
    with pytest.raises(PathpruneError, match=message) as err:
        pruned_rollout(**args)
    assert "\n" not in str(err.value)


class FakeTrainer:
    """What the rollout reads from a GRPOTrainer, for the checks made before anything is generated."""

    def __init__(self, model, tok, G=8, **kw):
        from types import SimpleNamespace

        self.model, self.processing_class = model, tok
        self.num_generations = self.num_generations_eval = G
        self.state = SimpleNamespace(global_step=0)
        self.temperature, self.top_p, self.top_k, self.min_p, self.repetition_penalty = 1.0, 1.0, 0, None, 1.0
        self.max_completion_length, self.use_vllm, self.mask_truncated_completions = 80, False, False
        self.__dict__.update(kw)


@pytest.mark.parametrize("build, trainer, prompts, message", [
    (dict(schedule="16:8", n=16), dict(G=4), ["C 1 + 2 ="] * 8, "set num_generations=8"),
    (dict(schedule="16:4", pruned="truncate", n=8), dict(G=4), ["C 1 + 2 ="] * 8, "n must equal num_generations"),
    (dict(schedule="16:4", pruned="truncate"), dict(G=8, mask_truncated_completions=True), ["C 1 + 2 ="] * 8,
     "mask_truncated_completions"),
    (dict(schedule="16:8", n=16), dict(use_vllm=True), ["C 1 + 2 ="] * 8, "set use_vllm=False"),
    (dict(schedule="16:8", n=16), dict(min_p=0.1), ["C 1 + 2 ="] * 8, "leave min_p"),
    (dict(schedule="16:8", n=16), {}, ["C 1 + 2 ="] * 4 + ["C 2 + 2 ="] * 4, "not one prompt repeated"),
    (dict(schedule="16:8", n=16), {}, ["C 1 + 2 ="] * 7, "not a whole number of groups"),
    (dict(schedule="16:8", n=16), dict(max_completion_length=300), ["C 1 + 2 ="] * 8, "exceeds the model's context"),
    (dict(schedule="16:8", n=16, refit_every=1), dict(state=type("S", (), {"global_step": 3})()), ["C 1 + 2 ="] * 8,
     "reward_funcs=rollout.reward"),
])
def test_bad_calls_fail_on_one_line(build, trainer, prompts, message):
    model, tok = load_testbed()  # a fresh copy: other files attach STOP's PEFT adapter to the shared fixture
    rollout = pruned_rollout("stop", **({"pruned": "drop"} | build))
    with pytest.raises(PathpruneError, match=message) as err:
        rollout(prompts, FakeTrainer(model, tok, **trainer))
    assert "\n" not in str(err.value)


def test_pathprune_rl_end_to_end_and_its_errors(tmp_path):
    from pathprune.cli import main

    assert main(["rl", "--out", str(tmp_path / "x"), "--conditions", "drop:4:8:stop"]) == 2
    assert main(["rl", "--out", str(tmp_path / "x"), "--conditions", "drop:12:6:mean_logprob+refit"]) == 2
    assert main(["rl", "--out", str(tmp_path / "x"), "--jobs", "0"]) == 2
    assert not (tmp_path / "x").exists()
    out = tmp_path / "rl"
    args = ["rl", "--out", str(out), "--conditions", "none:2,drop:4:2:mean_logprob", "--seeds", "0", "--steps", "2",
            "--prompts-per-step", "2", "--eval-per-level", "1", "--eval-paths", "2", "--eval-every", "2", "--jobs", "1"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["condition"]: r for r in summary["rows"]}
    assert set(rows) == {"none:2", "drop:4:2:mean_logprob"} and (out / "rl.png").is_file()
    assert rows["drop:4:2:mean_logprob"]["pruned_share"][0] == 0.5 and rows["none:2"]["pruned_share"][0] == 0
    run = json.loads((out / "runs" / "drop_4_2_mean_logprob-seed0.json").read_text())
    assert [c["step"] for c in run["curve"]] == [0, 2] and run["curve"][-1]["tokens"] == run["totals"]["generated"]
    assert "| drop:4:2:mean_logprob |" in (out / "table.md").read_text()
