"""STOP's configuration, validated when built and when read, and the base-model fingerprint that
guards checkpoints.

A checkpoint's ``stop_config.json`` holds ``format_version`` and the :class:`StopConfig` fields, nothing
else; how the module was trained (settings, record counts, the kept epoch's validation metrics, every
epoch's history) lives beside it in :data:`TRAINING_FILE`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import PathpruneError

FORMAT_VERSION = 1
"""Version of ``stop_config.json``; a file of a newer version is refused."""

TRAINING_FILE = "training.json"
"""Beside a checkpoint's config: how it was trained. Never read to score."""



HEAD_FEATURES = ("mean_logprob", "min_logprob")
"""Prefix features the head may read (our extension): the mean and the lowest log-probability of the
generated tokens, at temperature 1 with the engine's suppressed tokens removed (as Launch records them)."""


@dataclass
class StopConfig:
    """What defines a STOP module (saved in ``stop_config.json``)."""

    n_stop: int = 4
    """Appended [STOP] tokens (the paper's sweep peaks at 4–6)."""
    distinct_tokens: bool = False
    """One learned embedding per position instead of one shared embedding (official code: shared)."""
    use_adapter: bool = True
    """False = the paper's "w/o adapter" ablation: a head on the raw hidden state of the [STOP] tokens."""
    rank: int = 16
    """LoRA rank of the critique adapter (paper: 128 for 1.5B models)."""
    alpha: int = 32
    """LoRA alpha (paper: 2 x rank)."""
    target_modules: str | list[str] = "all-linear"
    """Adapter targets; all linear layers by default (paper), the LM head excluded."""
    head_features: list[str] = field(default_factory=list)
    """Our extension (not in the paper): token-confidence features of the prefix that the head reads
    beside the last [STOP] hidden state, from :data:`HEAD_FEATURES` (e.g. ``["mean_logprob"]``).
    The [STOP] tokens attend to keys and values, never to the base model's output distribution,
    so they cannot see how probable each written token was; these features give the head that."""
    feature_mean: list[float] = field(default_factory=list)
    """Per-feature mean over the training prefixes (the head reads standardised features)."""
    feature_std: list[float] = field(default_factory=list)
    """Per-feature standard deviation over the training prefixes."""
    base_fingerprint: dict = field(default_factory=dict)
    """Filled when attached: architecture, vocabulary, shape and a hash of a few weights."""
    base_model: str = ""
    """The base model's name (``testbed``, a directory's or GGUF file's name), provenance only: never a
    machine path (:func:`model_name`). The fingerprint, not the name, guards loading."""

    def __post_init__(self) -> None:
        for name in ("n_stop", "rank", "alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PathpruneError(f"{name} must be an integer >= 1, got {value!r}", parameter=name, value=value)
        unknown = [f for f in self.head_features if f not in HEAD_FEATURES]
        if unknown or len(set(self.head_features)) != len(self.head_features):
            raise PathpruneError(f"head_features must be distinct names from {', '.join(HEAD_FEATURES)}, "
                                 f"got {self.head_features}", parameter="head_features", value=self.head_features)
        for name in ("feature_mean", "feature_std"):  # empty until training has computed them
            value = getattr(self, name)
            if value and len(value) != len(self.head_features):
                raise PathpruneError(f"{name} needs one value per head feature ({len(self.head_features)}), "
                                     f"got {len(value)}", parameter=name, value=value)
        if any(s <= 0 for s in self.feature_std):
            raise PathpruneError(f"feature_std must be > 0, got {self.feature_std}", parameter="feature_std",
                                 value=self.feature_std)
        self.base_model = model_name(self.base_model) if self.base_model else ""

    def to_json(self) -> dict:
        """The content of ``stop_config.json``."""
        return {"format_version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, raw: dict, where: str | Path = "stop_config.json") -> StopConfig:
        """Read ``stop_config.json``'s content: the version checked, an unknown key a one-line error."""
        check_format(raw, where, FORMAT_VERSION)
        known = config_fields(cls, raw, where, ignore=("format_version",))
        try:
            return cls(**known)
        except (PathpruneError, TypeError) as err:  # TypeError: a value of the wrong type
            raise PathpruneError(f"{where}: {err}") from None


def check_format(raw: dict, where: str | Path, current: int) -> None:
    """Refuse a config file without a known ``format_version`` (one line naming the file)."""
    version = raw.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise PathpruneError(f"{where}: format_version {version!r} is not a pathprune format "
                             f"(this pathprune reads 1 to {current})")
    if version > current:
        raise PathpruneError(f"{where}: format_version {version} is newer than this pathprune reads ({current}); "
                             "upgrade pathprune")


def config_fields(cls, raw: dict, where: str | Path, ignore: tuple[str, ...] = ()) -> dict:
    """The dataclass ``cls``'s fields from a config file's ``raw`` content; an unknown key is an error."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(k for k in raw if k not in names and k not in ignore)
    if unknown:
        raise PathpruneError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(names))})")
    return {k: v for k, v in raw.items() if k in names}


def read_training(directory: str | Path) -> dict:
    """A checkpoint's training record (:data:`TRAINING_FILE`); ``{}`` when it has none."""
    file = Path(directory) / TRAINING_FILE
    return json.loads(file.read_text()) if file.is_file() else {}


def model_name(spec) -> str:
    """How a checkpoint records a base model: an embedded name as is, a directory or file by its own
    name only (a machine path says nothing on another machine and leaks the trainer's file system)."""
    from ..models.registry import EMBEDDED, TESTBED_DIR

    text = str(spec)
    if text in EMBEDDED:
        return text
    path = Path(text).expanduser()
    if path.resolve() == TESTBED_DIR:
        return "testbed"
    return path.name or text


def fingerprint_files(directory) -> dict:
    """:func:`fingerprint` of the model a Hugging Face directory holds, read from its config and safetensors
    without building it (a vLLM engine loads the model itself). Same slices: the input embeddings' first and
    last 8 rows and the last parameter (``lm_head.weight``, or ``model.norm.weight`` with tied embeddings)."""
    import json
    from pathlib import Path

    from safetensors import safe_open

    directory = Path(directory)
    cfg = json.loads((directory / "config.json").read_text())
    tied = cfg.get("tie_word_embeddings", False)
    wanted = {"model.embed_tokens.weight": None, ("model.norm.weight" if tied else "lm_head.weight"): None}
    for file in sorted(directory.glob("*.safetensors")):
        with safe_open(str(file), "pt") as f:
            for name in set(wanted) & set(f.keys()):
                wanted[name] = f.get_tensor(name)
    missing = [n for n, t in wanted.items() if t is None]
    if missing:
        from ..errors import PathpruneError

        raise PathpruneError(f"{directory}: no {', '.join(missing)} in its safetensors files")
    emb, last = wanted.values()
    h = hashlib.sha256()
    for t in (emb[:8], emb[-8:], last):
        h.update(t.float().contiguous().numpy().tobytes()[:65536])
    return {"architecture": (cfg.get("architectures") or ["?"])[0], "vocab_size": int(cfg["vocab_size"]),
            "hidden_size": int(cfg["hidden_size"]), "num_hidden_layers": int(cfg["num_hidden_layers"]),
            "weights_sha256": h.hexdigest()[:16]}


def fingerprint(model) -> dict:
    """Identify a base model: architecture, vocab, shape, and a SHA-256 of slices of a few weights."""
    cfg = model.config
    h = hashlib.sha256()
    emb = model.get_input_embeddings().weight
    last = [p for n, p in model.named_parameters() if "lora_" not in n][-1]  # a carried adapter changes nothing
    for t in (emb[:8], emb[-8:], last):
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes()[:65536])
    return {
        "architecture": type(model).__name__,
        "vocab_size": int(cfg.vocab_size),
        "hidden_size": int(cfg.hidden_size),
        "num_hidden_layers": int(cfg.num_hidden_layers),
        "weights_sha256": h.hexdigest()[:16],
    }
