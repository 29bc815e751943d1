"""``pathprune label`` and ``pathprune train``: Monte-Carlo labels and STOP training."""

from __future__ import annotations

from pathlib import Path

import typer

from .console import console, progress_bar
from .inputs import BACKEND_HELP, checked_backend, cut_points, model_and_tokenizer, unescape


def label(
    out: Path = typer.Option(..., help="Run directory (labels.jsonl, problems.jsonl); resumed if it exists."),
    model: str = typer.Option("testbed", help="Embedded name, HF directory or .gguf file."),
    benchmark: str = typer.Option(None, help="Benchmark file of training problems (default: testbed suite)."),
    testbed_split: str = typer.Option("train", help="Split of the testbed or a generated suite (reasoner:, "
                                      "wordproblems:) when no benchmark file is given."),
    levels: str = typer.Option("4,5,6,7,8,9,10", help="Testbed difficulty levels."),
    per_level: int = typer.Option(40, help="Testbed problems per family and level."),
    limit: int = typer.Option(None, help="Use only the first problems."),
    n_filter: int = typer.Option(16, "--n", "--n-filter", help="Paths per problem for the difficulty filter (paper: 32)."),
    min_correct: float = typer.Option(0.125, help="Drop problems with fewer correct paths (share)."),
    max_correct: float = typer.Option(0.875, help="Drop problems with more correct paths (share)."),
    prefix_tokens: str = typer.Option("12,16,20,24", help="Cut points: generated tokens L, or stepM/L (where each "
                                      "path wrote its M-th step, at most L tokens), e.g. 48 or step1/64,step2/96."),
    step_delimiter: str = typer.Option("\\n", help="Where a reasoning step ends, for stepM/L cuts (decoded text)."),
    k: int = typer.Option(16, help="Continuations per prefix (paper: 32)."),
    temperature: float = typer.Option(1.0),
    max_new_tokens: int = typer.Option(160),
    seed: int = typer.Option(0),
    problems_per_batch: int = typer.Option(4, help="Problems labelled together in this process (the same "
                                           "labels, fuller batches; a killed run loses those in flight; Ray "
                                           "workers take one at a time)."),
    workers: int = typer.Option(0, help="Ray workers (one model replica each); 0 or 1 = in this process."),
    ray_address: str = typer.Option("local", help="local = start Ray here; auto, HOST:PORT or ray://HOST:PORT "
                                                  "joins a cluster."),
    worker_cpus: float = typer.Option(1.0, help="CPUs per worker (also its torch threads)."),
    worker_gpus: float = typer.Option(0.0, help="GPUs per worker (e.g. 1)."),
    max_retries: int = typer.Option(2, help="Retries of a problem whose worker failed or died, then it is "
                                            "recorded as failed."),
    backend: str = typer.Option("transformers", help=BACKEND_HELP),
    exclude_sft: bool = typer.Option(True, help="Drop problems the model was fine-tuned on (the embedded "
                                     "reasoner's SFT pool): labels must not grade memorised solutions."),
) -> None:
    """Label prefixes with Monte-Carlo success rates (soft labels) for STOP training."""
    from ..errors import PathpruneError
    from ..io.runlog import cleaned_on_failure
    from ..stop.labels import LabelConfig, run_labelling
    from ..evaluation.sources import load_problems
    from ..models.train_reasoner import sft_problem_ids

    cfg = LabelConfig(n_filter=n_filter, min_correct=min_correct, max_correct=max_correct,
                      prefix_tokens=cut_points(prefix_tokens), k=k, temperature=temperature,
                      max_new_tokens=max_new_tokens, seed=seed, step_delimiter=unescape(step_delimiter))
    if workers < 0:
        raise PathpruneError(f"--workers must be >= 0, got {workers}", parameter="workers", value=workers)
    checked_backend(backend, workers=workers)
    if workers >= 2:
        from ..distributed.ray_executor import check_address

        check_address(ray_address)
    excluded = sft_problem_ids(model) if exclude_sft else frozenset()
    problems = load_problems(benchmark, testbed_split, levels, per_level, limit, seed, exclude=excluded)
    if excluded:
        console.print(f"{len(problems)} problems outside {model}'s SFT pool of {len(excluded)}")
    with cleaned_on_failure(out), progress_bar() as bar:
        task = bar.add_task("labelling problems", total=len(problems))
        bar.update(task, completed=0)
        if workers >= 2:
            from ..distributed.labelling import run_labelling_distributed

            log, _ = run_labelling_distributed(
                model, problems, cfg, out, workers=workers, ray_address=ray_address, max_retries=max_retries,
                resources={"num_cpus": worker_cpus, "num_gpus": worker_gpus},
                progress=lambda n: bar.advance(task, n))
        else:
            m, tok = model_and_tokenizer(model, backend)
            log = run_labelling(m, tok, problems, cfg, out, model, progress=lambda n: bar.advance(task, n),
                                problems_per_batch=problems_per_batch)
    kept = sum(bool(u.get("kept")) for u in log.units)
    failed = [u for u in log.units if u.get("failed")]
    console.print(f"{len(log.units)} problems, {kept} kept by the filter, {len(log.items)} labelled prefixes "
                  f"(mean soft label {sum(r['soft_label'] for r in log.items) / max(1, len(log.items)):.3f})"
                  + (f"; {len(failed)} failed (first: {failed[0]['problem_id']}: {failed[0]['error']})"
                     if failed else ""))


def train(
    labels: Path = typer.Option(..., help="Training labels (labels.jsonl or its run directory)."),
    val_labels: Path = typer.Option(..., help="Validation labels (held-out problems)."),
    out: Path = typer.Option(..., help="Checkpoint directory (the best epoch is kept)."),
    model: str = typer.Option("testbed", help="STOP: the base model it attaches to. --judge: the model a "
                                              "separate copy of which becomes the judge's backbone."),
    epochs: int = typer.Option(None, help="Epochs (default: 10 for STOP, 8 for --judge), raised until "
                               "--min-steps optimiser steps fit."),
    lr: float = typer.Option(None, help="Learning rate (default: 1e-3 for STOP, 1e-3 for --judge)."),
    batch_size: int = typer.Option(None, help="Batch size (default: 16 for STOP, 32 for --judge)."),
    min_steps: int = typer.Option(None, help="STOP: at least this many optimiser steps (default 300; epochs "
                                  "alone say nothing about how far a small label set trains)."),
    warmup_steps: int = typer.Option(0, help="STOP: linear learning-rate warm-up over the first steps."),
    stop_tokens: int = typer.Option(4, "--stop-tokens", help="Number of appended [STOP] tokens."),
    rank: int = typer.Option(16, help="LoRA rank of the critique adapter."),
    hard_labels: bool = typer.Option(False, "--hard-labels", help="Train on one rollout's outcome (K = 1)."),
    label_k: int = typer.Option(None, "--label-k", help="Soft labels from each prefix's first K rollouts only "
                                "(the label-cost study; default: all the labels hold)."),
    no_adapter: bool = typer.Option(False, "--no-adapter", help="Head on the raw hidden state (no LoRA)."),
    distinct_tokens: bool = typer.Option(False, help="One learned embedding per [STOP] position."),
    head_features: str = typer.Option("", help="STOP, our extension: comma-separated prefix features the head "
                                      "also reads (mean_logprob, min_logprob); the signal stop_lp uses mean_logprob."),
    weight_decay: float = typer.Option(0.01, help="STOP: AdamW weight decay."),
    loss: str = typer.Option("bce", help="STOP: bce (the paper's soft BCE) or our within-problem extension "
                             "bce+listwise / bce+pairwise (batches of whole (problem, cut) groups)."),
    rank_weight: float = typer.Option(1.0, help="STOP: weight of the listwise / pairwise term."),
    max_grad_norm: float = typer.Option(None, help="STOP: clip the gradient norm (default 1.0; 0: no clipping)."),
    select: str = typer.Option("mse", help="STOP: epoch kept, lowest val MSE (mse, official) or highest "
                               "within-problem AUROC (within_auroc)."),
    judge: bool = typer.Option(False, "--judge", help="Train the Type II-retrain judge instead of STOP: a separate "
                               "model + head re-reading the decoded prefix text (signal judge:OUT)."),
    pooling: str = typer.Option("last", help="--judge: pool the last token's hidden state or the mean (last|mean)."),
    labels_model: str = typer.Option(None, "--labels-model", help="--judge: the model whose tokenizer decodes the "
                                     "labels' token ids (the generator; default: --model)."),
    seed: int = typer.Option(0),
) -> None:
    """Train a STOP module, or with --judge the Type II-retrain judge (accelerate: one CPU or many GPUs)."""
    from ..models import load_model
    from ..stop.config import StopConfig
    from ..stop.labels import read_labels
    from ..stop.train import train_stop
    from ..stop.scorer_training import STOP_RECIPE, TrainConfig, planned_epochs, training_targets

    train_recs, val_recs = read_labels(labels), read_labels(val_labels)
    if judge:
        _train_judge(train_recs, val_recs, out, model, labels_model or model, epochs or 8, lr or 1e-3,
                     batch_size or 32, pooling, hard_labels, label_k, seed)
        return
    clip = STOP_RECIPE.max_grad_norm if max_grad_norm is None else max_grad_norm or None
    tcfg = TrainConfig(epochs=epochs or STOP_RECIPE.epochs, lr=lr or STOP_RECIPE.lr,
                       batch_size=batch_size or STOP_RECIPE.batch_size, hard_labels=hard_labels, label_k=label_k,
                       seed=seed, weight_decay=weight_decay, loss=loss, rank_weight=rank_weight, select=select,
                       max_grad_norm=clip, min_steps=STOP_RECIPE.min_steps if min_steps is None else min_steps,
                       warmup_steps=warmup_steps)
    training_targets(train_recs, tcfg)  # labels that cannot serve --label-k fail before the model loads
    m, tok = load_model(model)
    cfg = StopConfig(base_model=model, n_stop=stop_tokens, rank=rank, alpha=2 * rank, use_adapter=not no_adapter,
                     distinct_tokens=distinct_tokens,
                     head_features=[f.strip() for f in head_features.split(",") if f.strip()])
    with progress_bar() as bar:
        task = bar.add_task("training STOP", total=planned_epochs(train_recs, tcfg))
        report = train_stop(m, tok, train_recs, val_recs, cfg, tcfg, out,
                            progress=lambda epoch, metrics: bar.update(
                                task, completed=epoch, description=f"training STOP (val AUROC "
                                f"{_f(metrics['auroc'])}, within {_f(metrics['within_auroc'])})"))
    best = report["best"]
    console.print(f"saved {out}: epoch {best['epoch']}, val MSE {best['mse']:.4f}, Brier {best['brier']:.4f}, "
                  f"AUROC {_f(best['auroc'])} (within-problem {_f(best['within_auroc'])}), ECE {best['ece']:.3f}")


def _train_judge(train_recs, val_recs, out, model, labels_model, epochs, lr, batch_size, pooling, hard_labels, label_k,
                 seed):
    from ..models.loading import load_tokenizer, resolve
    from ..signals.judges import Judge, JudgeConfig, judge_train_config, train_judge

    provenance = train_recs[0].get("provenance") or {}
    config = JudgeConfig(pooling=pooling, base_model=model, labels={"model": labels_model, **provenance})
    judge = Judge.from_base(model, config, seed=seed)
    label_tok = judge.tokenizer if labels_model == model else load_tokenizer(resolve(labels_model))
    tcfg = judge_train_config(epochs=epochs, lr=lr, batch_size=batch_size, hard_labels=hard_labels, label_k=label_k,
                              seed=seed)
    with progress_bar() as bar:
        task = bar.add_task("training judge", total=epochs)
        report = train_judge(judge, label_tok, train_recs, val_recs, tcfg, out,
                             progress=lambda epoch, metrics: bar.update(
                                 task, completed=epoch, description=f"training judge (val AUROC "
                                 f"{_f(metrics['auroc'])}, within {_f(metrics['within_auroc'])})"))
    for m in report["history"]:
        console.print(f"epoch {m['epoch']}: train loss {m['train_loss']:.4f}, val MSE {m['mse']:.4f}, "
                      f"AUROC {_f(m['auroc'])} (within-problem {_f(m['within_auroc'])}), {m['seconds']:.0f} s")
    best = report["best"]
    console.print(f"saved {out}: epoch {best['epoch']}, val MSE {best['mse']:.4f}, Brier {best['brier']:.4f}, "
                  f"AUROC {_f(best['auroc'])} (within-problem {_f(best['within_auroc'])}), ECE {best['ece']:.3f}, "
                  f"{report['seconds']:.0f} s")


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
