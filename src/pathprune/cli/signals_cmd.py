"""``pathprune signals``: the registered pruning signals and where they sit in the taxonomy."""

from __future__ import annotations

from rich.table import Table

from .console import console


def signals() -> None:
    """List registered signals with their type (I–IV), source, learnability and needs."""
    from ..signals import available_signals, get_signal

    table = Table(title="pruning signals (--signal NAME[:ARG])")
    for col in ("name", "type", "source", "learnable", "needs", "description"):
        table.add_column(col)
    for name in available_signals():
        sig = get_signal(name)
        doc = (type(sig).__doc__ or "").strip().splitlines()[0]
        table.add_row(name, sig.taxonomy, sig.source, "yes" if sig.learnable else "no",
                      ", ".join(sorted(sig.needs)) or "–", doc)
    console.print(table)
