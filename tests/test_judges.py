"""Type II judges: the Qwen2.5-Math-PRM loader and signal, the Type II-retrain judge and `train --judge`."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from pathprune.cli import main
from pathprune.engine import SamplingParams
from pathprune.errors import PathpruneError
from pathprune.signals import CheckView, get_signal
from pathprune.signals.judges import Judge, JudgeConfig, judge_train_config, load_judge, load_prm, save_judge, \
    split_steps, train_judge
from pathprune.signals.judges.prm import SYSTEM_PROMPT
from pathprune.stop.config import fingerprint
from pathprune.testbed.problems import generate
from pathprune.testbed.tokenizer import WORDS
from pathprune.evaluation.problems import requests_for

from conftest import load_testbed, paused_batch, run_pruner

SEP = "<extra_0>"
PAUSED_LEVELS = (("chain", 7), ("list", 6))
TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"


def _prm_tokenizer(separator=SEP, chat=True):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", separator]
    vocab = specials + WORDS + ["system", "user", "assistant", "Please", "reason"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>",
                                   additional_special_tokens=specials[2:], chat_template=TEMPLATE if chat else None)


def _write_prm(path, seed=0, chat=True, separator=SEP):
    """A randomly initialised PRM in the official layout: config.json + safetensors (model.*, score.*, lm_head)."""
    from transformers import Qwen2Config, Qwen2Model

    tok = _prm_tokenizer(separator, chat)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    torch.manual_seed(seed)
    decoder = Qwen2Model(cfg).eval()
    head = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(0, 0.2)
    state = {f"model.{k}": v.contiguous() for k, v in decoder.state_dict().items()}
    state |= {f"score.{k}": v.contiguous() for k, v in head.state_dict().items()}
    state["lm_head.weight"] = torch.zeros(len(tok), 32)  # the upstream checkpoint may carry it: ignored
    path.mkdir(parents=True)
    save_file(state, path / "model.safetensors")
    raw = cfg.to_dict() | {"architectures": ["Qwen2ForProcessRewardModel"],
                           "auto_map": {"AutoModel": "modeling_qwen2_rm.Qwen2ForProcessRewardModel"}}
    (path / "config.json").write_text(json.dumps(raw))
    tok.save_pretrained(path)
    return decoder, head, tok


@pytest.fixture(scope="module")
def prm_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("prm") / "tiny-prm"
    decoder, head, tok = _write_prm(path)
    return path, decoder, head, tok


def _rewards_by_hand(decoder, head, ids, sep_id):
    """softmax(score head at each separator)[1] from the modules the checkpoint was written from."""
    with torch.no_grad():
        h = decoder(input_ids=torch.tensor([ids])).last_hidden_state[0]
        w1, b1, w2, b2 = head[0].weight, head[0].bias, head[2].weight, head[2].bias
        logits = torch.relu(h @ w1.T + b1) @ w2.T + b2
    at = [i for i, t in enumerate(ids) if t == sep_id]
    return [math.exp(logits[i, 1]) / (math.exp(logits[i, 0]) + math.exp(logits[i, 1])) for i in at]


def _manual_ids(tok, question, steps):
    text = (f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
            f"<|im_start|>assistant\n{''.join(s + SEP for s in steps)}<|im_end|>\n")
    return tok(text).input_ids


def test_split_steps():
    assert split_steps("a b\n\nc\n \n\nd\n") == ["a b", "c", "d"]
    assert split_steps("a\nb\n\nc", "line") == ["a", "b", "c"]
    assert split_steps("S0 1 + 2 = 3 ; 3 * 4 = 2 ; 2 -", ";") == ["S0 1 + 2 = 3", "3 * 4 = 2", "2 -"]
    assert split_steps("  \n\n ") == []


def test_prm_rewards_equal_softmax_at_separators(prm_dir):
    path, decoder, head, tok = prm_dir
    prm = load_prm(path)
    for name, tensor in load_file(path / "model.safetensors").items():  # official weight names, loaded as is
        if not name.startswith("lm_head"):
            assert torch.equal(prm.state_dict()[name], tensor)
    question, steps = "C 1 + 2 * 3 =", ["S0 1 + 2 = 3", "3 * 3 = 9", "A"]
    ids = prm.build_input(question, steps)
    assert ids == _manual_ids(tok, question, steps) and ids.count(tok.convert_tokens_to_ids(SEP)) == 3
    short = prm.build_input(question, steps[:1])
    rewards = prm.step_rewards([short, ids])  # padded batch == one sequence at a time, by hand
    sep = tok.convert_tokens_to_ids(SEP)
    assert rewards[0] == pytest.approx(_rewards_by_hand(decoder, head, short, sep), abs=1e-5)
    assert rewards[1] == pytest.approx(_rewards_by_hand(decoder, head, ids, sep), abs=1e-5)
    assert len(set(round(r, 4) for r in rewards[1])) == 3  # the random head separates the steps
    empty = prm.build_input(question, [])  # no step yet: one separator right after the assistant header
    assert empty == _manual_ids(tok, question, [""]) and empty.count(sep) == 1


def test_prm_signal_scores_and_charges_reencoded_tokens(prm_dir, testbed):
    path, decoder, head, tok = prm_dir
    model, mtok = testbed
    problems, _, batch = paused_batch(model, mtok, PAUSED_LEVELS, seed=3)
    sep = tok.convert_tokens_to_ids(SEP)
    for agg, reduce in [("last", lambda r: r[-1]), ("min", min)]:
        view = CheckView(batch, requests_for(mtok, problems), mtok, stage=0)
        scores = get_signal(f"prm:{path}:split=;:agg={agg}").score(view)
        tokens = 0
        for row, rec in enumerate(batch.records):
            steps = [s.strip() for s in mtok.decode(rec.tokens, skip_special_tokens=True).split(";") if s.strip()]
            ids = _manual_ids(tok, problems[rec.problem_index].prompt, steps)
            tokens += len(ids)
            assert scores[row].item() == pytest.approx(reduce(_rewards_by_hand(decoder, head, ids, sep)), abs=1e-5)
        assert view.reencoded_tokens == tokens and scores.std() > 0
    assert batch.check_tokens == 0  # nothing appended to the live cache

    # in the engine: kept paths are the top-k by PRM score, and the re-encoded tokens are accounted
    params = SamplingParams(n=4, max_new_tokens=160, seed=1)
    results = run_pruner(problems, model, mtok, f"prm:{path}:split=;", "12:2", params)
    charged = 0
    for r in results:
        assert sum(p.kept for p in r.paths) == 2
        assert min(p.scores[0] for p in r.paths if p.kept) >= max(p.scores[0] for p in r.paths if not p.kept)
        for p in r.paths:
            prefix = mtok.decode(mtok(p.text, add_special_tokens=False).input_ids[:12])
            charged += len(_manual_ids(tok, r.problem.prompt, [s.strip() for s in prefix.split(";") if s.strip()]))
    assert sum(r.usage.reencoded for r in results) == charged


def test_prm_load_errors(prm_dir, tmp_path):
    path, *_ = prm_dir
    with pytest.raises(PathpruneError, match="not a PRM directory"):
        load_prm(tmp_path)
    bad = tmp_path / "causal"
    _write_prm(bad)
    raw = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps(raw | {"architectures": ["Qwen2ForCausalLM"]}))
    with pytest.raises(PathpruneError, match="not a Qwen2 process reward model"):
        load_prm(bad)
    (bad / "config.json").write_text(json.dumps(raw))
    state = load_file(bad / "model.safetensors")
    save_file({k: v for k, v in state.items() if k != "score.2.bias"}, bad / "model.safetensors")
    with pytest.raises(PathpruneError, match="do not match the Qwen2 PRM layout \\(missing score.2.bias\\)"):
        load_prm(bad)
    save_file(state | {"score.2.weight": torch.zeros(3, 32), "score.2.bias": torch.zeros(3)},
              bad / "model.safetensors")
    with pytest.raises(PathpruneError, match="score.2.weight has shape \\(3, 32\\), config.json implies \\(2, 32\\)"):
        load_prm(bad)
    (bad / "model.safetensors").unlink()
    torch.save(state, bad / "pytorch_model.bin")
    with pytest.raises(PathpruneError, match="found pickled pytorch_model.bin; only safetensors") as err:
        load_prm(bad)
    assert "\n" not in str(err.value)
    nosep = tmp_path / "nosep"
    _write_prm(nosep, separator="<step>")
    with pytest.raises(PathpruneError, match="no step separator token '<extra_0>'"):
        load_prm(nosep)
    assert load_prm(nosep, separator="<step>").separator_id is not None
    with pytest.raises(PathpruneError, match="agg must be one of"):
        get_signal(f"prm:{path}:agg=max")
    with pytest.raises(PathpruneError, match="unknown option 'k=3'"):
        get_signal(f"prm:{path}:k=3")
    assert get_signal(f"prm:{path}:split=line:agg=mean").split == "line"  # ':' never clashes with --signals a,b
    with pytest.raises(PathpruneError, match="checkpoint directory not found"):
        get_signal("prm:/nonexistent/prm")
    with pytest.raises(PathpruneError, match="prm needs a PRM directory"):
        get_signal("prm").model()


# -- Type II-retrain ------------------------------------------------------------------------------

def _records(tok, n_chain, n_list, seed):
    """Label records in the STOP format whose soft label is learnable from the text (the task family)."""
    recs = []
    for fam, label, count in (("chain", 0.9, n_chain), ("list", 0.15, n_list)):
        for p in generate(fam, 6, count, "train" if seed == 0 else "test", seed=seed):
            prompt = tok(p.prompt).input_ids
            recs.append({"problem_id": p.id, "prompt_len": len(prompt), "prefix_token_ids": prompt + prompt[1:4],
                         "soft_label": label, "outcomes": [int(label > 0.5)]})
    return recs


@pytest.fixture(scope="module")
def trained_judge(tmp_path_factory, testbed):
    _, tok = testbed
    train, val = _records(tok, 24, 24, 0), _records(tok, 12, 12, 1)
    judge = Judge.from_base("testbed", JudgeConfig(), seed=0)
    before = {k: v.clone() for k, v in judge.backbone.state_dict().items()}
    out = tmp_path_factory.mktemp("judge") / "judge"
    report = train_judge(judge, tok, train, val, judge_train_config(epochs=2, lr=3e-3, batch_size=16), out)
    return out, judge, before, report, val


def test_judge_trains_as_a_separate_model_and_round_trips(trained_judge, testbed):
    out, judge, before, report, val = trained_judge
    model, tok = testbed
    assert report["best"]["auroc"] == 1.0 and len(report["history"]) == 2  # the family is learnable from text
    changed = [k for k, v in judge.backbone.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) == len(before)  # full fine-tune of its own copy ...
    assert fingerprint(model) == fingerprint(load_testbed()[0])  # ... and the generator is untouched
    assert {p.name for p in out.iterdir()} == {"backbone", "judge_config.json", "judge_head.safetensors",
                                               "training.json"}
    meta = json.loads((out / "judge_config.json").read_text())
    training = json.loads((out / "training.json").read_text())  # beside the config, not in it
    assert training["best"]["epoch"] == report["best"]["epoch"] and meta["pooling"] == "last"
    assert training["history"] == report["history"] and training["train"]["weight_decay"] == 0.0
    assert set(meta) == {"kind", "format_version", "pooling", "max_length", "base_model", "labels"}
    assert meta["base_model"] == "testbed"
    loaded = load_judge(out)
    from pathprune.signals.judges.retrain import record_text

    ids = loaded.encode([record_text(r, tok) for r in val])
    # the saved epoch is the best one: reloaded scores reproduce its validation metrics
    from pathprune.stop.scorer_training import label_metrics

    assert label_metrics(loaded.score_ids(ids).tolist(), val)["mse"] == pytest.approx(report["best"]["mse"], abs=1e-6)


def test_judge_signal_scores_by_hand_and_charges(trained_judge, testbed):
    out, *_ = trained_judge
    model, tok = testbed
    problems, _, batch = paused_batch(model, tok, PAUSED_LEVELS, seed=3)
    view = CheckView(batch, requests_for(tok, problems), tok, stage=0)
    signal = get_signal(f"judge:{out}")
    scores = signal.score(view)
    judge = signal.model()
    tokens = 0
    for row, rec in enumerate(batch.records):
        ids = judge.tokenizer(f"{problems[rec.problem_index].prompt}\n{tok.decode(rec.tokens)}").input_ids
        tokens += len(ids)
        with torch.no_grad():  # one unpadded sequence, head on the last token, by hand
            h = judge.backbone(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
            p = torch.sigmoid(h @ judge.head.weight[0] + judge.head.bias[0]).item()
        assert scores[row].item() == pytest.approx(p, abs=1e-5)
    assert view.reencoded_tokens == tokens and batch.check_tokens == 0
    # the judge reads a live path exactly as it read that path's label record in training
    from pathprune.signals.judges.retrain import record_text

    live = signal.texts(view)
    for row, rec in enumerate(batch.records):
        prompt = tok(problems[rec.problem_index].prompt).input_ids
        record = {"prefix_token_ids": prompt + rec.tokens, "prompt_len": len(prompt)}
        assert record_text(record, tok) == live[row]


def test_judge_load_errors(trained_judge, tmp_path):
    import shutil

    out, *_ = trained_judge
    with pytest.raises(PathpruneError, match="not a judge checkpoint"):
        load_judge(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    head = load_file(bad / "judge_head.safetensors")
    save_file({"head.weight": torch.zeros(1, 64), "head.bias": head["head.bias"]}, bad / "judge_head.safetensors")
    with pytest.raises(PathpruneError, match="head does not fit the backbone"):
        load_judge(bad)
    save_file(head, bad / "judge_head.safetensors")
    meta = json.loads((bad / "judge_config.json").read_text())
    (bad / "judge_config.json").write_text(json.dumps(meta | {"format_version": 99}))
    with pytest.raises(PathpruneError, match="format_version 99 is newer than this pathprune reads"):
        load_judge(bad)
    (bad / "judge_config.json").write_text(json.dumps(meta | {"kind": "other"}))
    with pytest.raises(PathpruneError, match="not a pathprune judge"):
        load_judge(bad)
    (bad / "judge_config.json").write_text(json.dumps(meta | {"poolling": "mean"}))
    with pytest.raises(PathpruneError, match="unknown key poolling"):
        load_judge(bad)
    (bad / "judge_config.json").write_text(json.dumps(meta))
    (bad / "backbone" / "model.safetensors").unlink()
    with pytest.raises(PathpruneError) as err:
        load_judge(bad)
    assert "\n" not in str(err.value) and "backbone" in str(err.value)
    with pytest.raises(PathpruneError, match="checkpoint directory not found"):
        get_signal(f"judge:{tmp_path / 'missing'}")
    with pytest.raises(PathpruneError, match="pooling must be 'last' or 'mean'"):
        JudgeConfig(pooling="max")


def test_train_judge_command(tmp_path, testbed):
    _, tok = testbed
    for name, recs in (("train", _records(tok, 8, 8, 0)), ("val", _records(tok, 4, 4, 1))):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    args = ["train", "--judge", "--labels", str(tmp_path / "train.jsonl"), "--val-labels", str(tmp_path / "val.jsonl"),
            "--out", str(tmp_path / "j"), "--epochs", "1", "--pooling", "mean"]
    assert main(args) == 0
    assert load_judge(tmp_path / "j").config.pooling == "mean"
    assert main(args[:-1] + ["max"]) == 2
    save_judge(load_judge(tmp_path / "j"), tmp_path / "j")  # overwriting in place is atomic
    assert (tmp_path / "j" / "judge_config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j", "train.jsonl", "val.jsonl"]  # no temporaries left


def test_shipped_testbed_judge_scores_in_the_engine(testbed):
    """`--signal judge` without a path uses the judge shipped for the testbed; its re-reading is charged."""
    model, tok = testbed
    problems = generate("chain", 8, 2, "test")
    params = SamplingParams(n=6, temperature=1.0, max_new_tokens=120, seed=4)
    results = run_pruner(problems, model, tok, "judge", "14:2", params)
    scores = [p.scores[0] for r in results for p in r.paths if p.scores]
    assert len(scores) >= 10 and all(0 < s < 1 for s in scores) and len(set(scores)) > 1
    assert all(r.usage.reencoded > 0 and sum(p.kept for p in r.paths) == 2 for r in results)
