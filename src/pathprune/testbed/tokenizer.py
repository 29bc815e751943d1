"""The testbed's word-level Hugging Face tokenizer.

One token per whitespace-separated word. ``[STOP]`` is reserved as a special
token: it is in the vocabulary (so STOP modules need no resizing) but the
model never sees it in training and every sampler suppresses it.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>", "[STOP]"]
WORDS = [
    *(str(d) for d in range(10)),
    "+", "-", "*", "=", ";", ">", "|", "?",
    "A", "C", "L", "S0", "S1",
    "rev", "rot", "swp", "inc",
]
VOCAB = SPECIALS + WORDS
STOP_TOKEN = "[STOP]"


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Build the tokenizer from :data:`VOCAB` (deterministic ids)."""
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    bos = VOCAB.index("<bos>")
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=[STOP_TOKEN],
        padding_side="left",
        model_max_length=256,
    )
