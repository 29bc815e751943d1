"""Model loading: HF directories of several architectures, the real SmolLM2 GGUF, and bad input."""

import time

import pytest
import torch

from pathprune.engine.loop import sample
from pathprune.engine.request import encode_prompt
from pathprune.engine.sampling import SamplingParams
from pathprune.errors import PathpruneError
from pathprune.models import load_model, resolve
from pathprune.tasks.problem import Problem
from pathprune.testbed.tokenizer import VOCAB, build_tokenizer


def _tiny(arch: str):
    import transformers as tf

    common = dict(vocab_size=len(VOCAB), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                  bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if arch == "gpt_oss":
        cfg = tf.GptOssConfig(**{**common, "intermediate_size": 32}, head_dim=16, num_local_experts=4,
                              num_experts_per_tok=2)
        return tf.GptOssForCausalLM(cfg)
    cls = {"qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM), "llama": (tf.LlamaConfig, tf.LlamaForCausalLM)}[arch]
    return cls[1](cls[0](**common))


@pytest.mark.parametrize("arch", ["qwen2", "llama", "gpt_oss"])
def test_load_hf_directory(tmp_path, arch):
    torch.manual_seed(0)
    model = _tiny(arch).eval()
    model.save_pretrained(tmp_path)
    build_tokenizer().save_pretrained(tmp_path)
    loaded, tok = load_model(tmp_path)
    assert type(loaded) is type(model) and not loaded.training
    ids = torch.tensor([tok("C 3 + 4 =").input_ids])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
    paths = sample(loaded, tok, [ids[0].tolist()], SamplingParams(n=2, max_new_tokens=5))
    assert all(1 <= len(p) <= 5 for p in paths[0])


@pytest.fixture(scope="module")
def smollm(in_prepared_cache):
    model, tok = load_model("smollm2-135m")
    return model, tok, in_prepared_cache[1]


@pytest.mark.slow
def test_gguf_end_to_end(smollm):
    model, tok, messages = smollm
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.vocab_size == 49152
    assert any("converting" in m for m in messages)  # converted once (preparing the reasoner)...
    t0, again = time.perf_counter(), []
    path = resolve("smollm2-135m", progress=again.append)
    assert not again and (path / "model.safetensors").is_file()  # ...and cached afterwards
    assert time.perf_counter() - t0 < 2
    problem = Problem("q", "8", messages=({"role": "user", "content": "What is 3 + 5?"},))
    prompt = encode_prompt(tok, problem.input)
    assert tok.decode(prompt).count("<|im_start|>") >= 2  # the chat template was applied
    out = sample(model, tok, [prompt], SamplingParams(n=2, temperature=0, max_new_tokens=12))[0]
    text = tok.decode(out[0], skip_special_tokens=True)
    assert out[0] == out[1] and len(text.strip()) > 0


def test_bad_inputs_give_one_line_errors(tmp_path):
    cases = []
    with pytest.raises(PathpruneError, match="neither a path nor an embedded model") as e:
        load_model(tmp_path / "missing")
    cases.append(e)
    with pytest.raises(PathpruneError, match="no config.json") as e:
        load_model(tmp_path)
    cases.append(e)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(PathpruneError, match="not a .gguf model") as e:
        load_model(tmp_path / "notes.txt")
    cases.append(e)
    (tmp_path / "bad.gguf").write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(PathpruneError, match="not a GGUF file") as e:
        load_model(tmp_path / "bad.gguf")
    cases.append(e)
    (tmp_path / "trunc.gguf").write_bytes(b"GGUF" + b"\x03\0\0\0" + b"\xff" * 20)
    with pytest.raises(PathpruneError, match="cannot read GGUF file") as e:
        load_model(tmp_path / "trunc.gguf")
    cases.append(e)
    assert all("\n" not in str(c.value) for c in cases)


def test_not_a_causal_lm_and_corrupt_weights(tmp_path):
    from transformers import BertConfig, BertModel

    bert = tmp_path / "bert"
    BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16)).save_pretrained(bert)
    with pytest.raises(PathpruneError, match="not a causal LM"):
        load_model(bert)
    corrupt = tmp_path / "corrupt"
    _tiny("qwen2").save_pretrained(corrupt)
    build_tokenizer().save_pretrained(corrupt)
    (corrupt / "model.safetensors").write_bytes(b"\x10\x00\x00\x00garbage-not-safetensors")
    with pytest.raises(PathpruneError, match="cannot load model") as e:
        load_model(corrupt)
    assert "\n" not in str(e.value)
