"""The testbed model: a small, standard ``Qwen2ForCausalLM``.

Using a stock transformers class means every later component (engine, STOP,
PEFT adapters, serving) treats the testbed exactly like a real model.
"""

from __future__ import annotations

from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

from .tokenizer import STOP_TOKEN, VOCAB


def testbed_config(**overrides) -> Qwen2Config:
    """~1.2M parameters: 6 layers, width 128, grouped-query attention (4 heads, 2 KV)."""
    cfg = dict(
        vocab_size=len(VOCAB),
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=VOCAB.index("<bos>"),
        eos_token_id=VOCAB.index("<eos>"),
        pad_token_id=VOCAB.index("<pad>"),
    )
    cfg.update(overrides)
    return Qwen2Config(**cfg)


def testbed_generation_config() -> GenerationConfig:
    """Sampling at temperature 1 reproduces the teacher's error rates by design."""
    return GenerationConfig(
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=160,
        bos_token_id=VOCAB.index("<bos>"),
        eos_token_id=VOCAB.index("<eos>"),
        pad_token_id=VOCAB.index("<pad>"),
        suppress_tokens=[VOCAB.index(STOP_TOKEN), VOCAB.index("<pad>"), VOCAB.index("<bos>"), VOCAB.index("<unk>")],
    )


def new_testbed_model(seed: int = 0) -> Qwen2ForCausalLM:
    import torch

    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(testbed_config())
    model.generation_config = testbed_generation_config()
    return model
