"""``pathprune label`` and ``pathprune train``: Monte-Carlo labels and STOP training."""

from __future__ import annotations

from pathlib import Path

import typer

from .console import console, parse_int_list, progress_bar


def label(
    out: Path = typer.Option(..., help="Run directory (labels.jsonl, problems.jsonl); resumed if it exists."),
    model: str = typer.Option("testbed", help="Embedded name, HF directory or .gguf file."),
    benchmark: str = typer.Option(None, help="Benchmark file of training problems (default: testbed suite)."),
    testbed_split: str = typer.Option("train", help="Testbed split when no benchmark is given."),
    levels: str = typer.Option("4,5,6,7,8,9,10", help="Testbed difficulty levels."),
    per_level: int = typer.Option(40, help="Testbed problems per family and level."),
    limit: int = typer.Option(None, help="Use only the first problems."),
    n_filter: int = typer.Option(16, help="Paths per problem for the difficulty filter (paper: 32)."),
    min_correct: float = typer.Option(0.125, help="Drop problems with fewer correct paths (share)."),
    max_correct: float = typer.Option(0.875, help="Drop problems with more correct paths (share)."),
    prefix_tokens: str = typer.Option("12,16,20,24", help="Cut points in generated tokens."),
    k: int = typer.Option(16, help="Continuations per prefix (paper: 32)."),
    temperature: float = typer.Option(1.0),
    max_new_tokens: int = typer.Option(160),
    seed: int = typer.Option(0),
) -> None:
    """Label prefixes with Monte-Carlo success rates (soft labels) for STOP training."""
    from ..models import load_model
    from ..stop.labels import LabelConfig, run_labelling
    from .run_cmd import load_problems

    cfg = LabelConfig(n_filter=n_filter, min_correct=min_correct, max_correct=max_correct,
                      prefix_tokens=parse_int_list(prefix_tokens, "prefix_tokens"), k=k, temperature=temperature,
                      max_new_tokens=max_new_tokens, seed=seed)
    problems = load_problems(benchmark, testbed_split, levels, per_level, limit, seed)
    m, tok = load_model(model)
    with progress_bar() as bar:
        task = bar.add_task("labelling problems", total=len(problems))
        bar.update(task, completed=0)
        log = run_labelling(m, tok, problems, cfg, out, model, progress=lambda n: bar.advance(task, n))
    kept = sum(u["kept"] for u in log.units)
    console.print(f"{len(log.units)} problems, {kept} kept by the filter, {len(log.items)} labelled prefixes "
                  f"(mean soft label {sum(r['soft_label'] for r in log.items) / max(1, len(log.items)):.3f})")


def train(
    labels: Path = typer.Option(..., help="Training labels (labels.jsonl or its run directory)."),
    val_labels: Path = typer.Option(..., help="Validation labels (held-out problems)."),
    out: Path = typer.Option(..., help="Checkpoint directory (the best epoch is kept)."),
    model: str = typer.Option("testbed"),
    epochs: int = typer.Option(10),
    lr: float = typer.Option(1e-2),
    batch_size: int = typer.Option(32),
    stop_tokens: int = typer.Option(4, "--stop-tokens", help="Number of appended [STOP] tokens."),
    rank: int = typer.Option(16, help="LoRA rank of the critique adapter."),
    hard_labels: bool = typer.Option(False, "--hard-labels", help="Train on one rollout's outcome (K = 1)."),
    no_adapter: bool = typer.Option(False, "--no-adapter", help="Head on the raw hidden state (no LoRA)."),
    distinct_tokens: bool = typer.Option(False, help="One learned embedding per [STOP] position."),
    seed: int = typer.Option(0),
) -> None:
    """Train a STOP module (accelerate: the same code on one CPU or many GPUs)."""
    from ..models import load_model
    from ..stop.config import StopConfig
    from ..stop.labels import read_labels
    from ..stop.train import TrainStopConfig, train_stop

    train_recs, val_recs = read_labels(labels), read_labels(val_labels)
    m, tok = load_model(model)
    cfg = StopConfig(n_stop=stop_tokens, rank=rank, alpha=2 * rank, use_adapter=not no_adapter,
                     distinct_tokens=distinct_tokens)
    tcfg = TrainStopConfig(epochs=epochs, lr=lr, batch_size=batch_size, hard_labels=hard_labels, seed=seed)
    with progress_bar() as bar:
        task = bar.add_task("training STOP", total=epochs)
        report = train_stop(m, tok, train_recs, val_recs, cfg, tcfg, out,
                            progress=lambda epoch, metrics: bar.update(
                                task, completed=epoch, description=f"training STOP (val AUROC "
                                f"{metrics['auroc']:.3f}, within {metrics['within_auroc']:.3f})"))
    best = report["best"]
    console.print(f"saved {out}: epoch {best['epoch']}, val MSE {best['mse']:.4f}, Brier {best['brier']:.4f}, "
                  f"AUROC {best['auroc']:.3f} (within-problem {best['within_auroc']:.3f}), ECE {best['ece']:.3f}")
