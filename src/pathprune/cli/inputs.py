"""Checks a command runs on its inputs before it loads a model or writes anything to ``--out``."""

from __future__ import annotations

from rich.markup import escape

from ..errors import PathpruneError
from .console import err_console


def warn(message: str) -> None:
    """One ``warning:`` line on stderr (the run goes on)."""
    err_console.print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False)


def checked_signals(specs: list[str], *, prunes: bool = True) -> list:
    """Every signal spec built and its files checked (:meth:`Signal.validate`), whether or not the schedule
    prunes: a typo in ``stop:DIR`` fails now, not after a full run that never opened it."""
    from ..engine import get_signal

    if len(set(specs)) != len(specs):
        raise PathpruneError(f"signals given twice: {', '.join(specs)}")
    signals = []
    for spec in specs:
        signal = get_signal(spec)
        signal.validate()
        signals.append(signal)
    if not prunes:
        warn(f"--schedule none: nothing is pruned, the signal is unused ({', '.join(specs)})")
    return signals


BACKEND_HELP = "Generation backend: transformers (pathprune's decode loop) or vllm (a vLLM engine; needs vLLM)."


def checked_backend(name: str, *, workers: int = 0) -> str:
    """A known backend; vLLM batches every request itself, so it runs in this process (no Ray workers)."""
    from ..engine.pruner import BACKENDS
    from ..errors import suggest

    if name not in BACKENDS:
        raise PathpruneError(f"unknown backend {name!r}{suggest(name, BACKENDS)}; available: {', '.join(BACKENDS)}",
                             parameter="backend", value=name)
    if name == "vllm" and workers >= 2:
        raise PathpruneError("--backend vllm runs in one process (vLLM batches the requests itself); "
                             "drop --workers", parameter="workers", value=workers)
    return name


def model_and_tokenizer(model: str, backend: str, signals: list | None = None):
    """``(model, tokenizer)`` for a run: a transformers model, or a vLLM backend in its place, built with the
    model plugin the signals need (one per engine: STOP checkpoints that differ need separate runs)."""
    if backend == "vllm":
        from ..engine.vllm_backend import load_vllm_backend, model_directory

        directory, overrides, owner = model_directory(model), {}, None
        for signal in signals or []:
            wanted = signal.vllm_overrides(directory)
            if wanted and overrides and wanted != overrides:
                raise PathpruneError(f"signals {owner!r} and {signal.name!r} each need their own vLLM model plugin; "
                                     "evaluate them in separate runs on --backend vllm")
            if wanted:
                overrides, owner = wanted, signal.name
        engine = load_vllm_backend(directory, hf_overrides=overrides)
        return engine, engine.tokenizer
    from ..models import load_model

    return load_model(model)


def unescape(text: str) -> str:
    """A delimiter typed on a command line: ``\\n``, ``\\t`` and ``\\\\`` read as the characters they name."""
    out, i = [], 0
    while i < len(text):
        pair = text[i:i + 2]
        if pair in ("\\n", "\\t", "\\\\"):
            out.append({"\\n": "\n", "\\t": "\t", "\\\\": "\\"}[pair])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def cut_points(text: str) -> tuple[int | str, ...]:
    """``"48,step2/96"`` → ``(48, "step2/96")``: token counts as ints, step checkpoints by name; a clear error
    otherwise."""
    from ..engine.schedule import checkpoint_name, parse_checkpoint

    cuts: list[int | str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            length, steps = parse_checkpoint(part)
        except ValueError:
            raise PathpruneError(f"bad cut point {part!r}: give token counts L or stepM/L (e.g. 48,step2/96)",
                                 parameter="prefix_tokens", value=text) from None
        cuts.append(length if steps is None else checkpoint_name(length, steps))
    return tuple(cuts)
