"""``pathprune rl``: GRPO on the testbed with no pruning vs pruned rollouts (TRL's GRPOTrainer)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .console import console, parse_int_list, progress_bar


def rl(
    out: Path = typer.Option(Path("runs/rl"), help="Run directory (finished runs of the same config are reused)."),
    conditions: str = typer.Option(None, help="Arms, comma-separated: none:G, drop:N:K:SIGNAL, truncate:N:K:SIGNAL; "
                                   "SIGNAL+refit re-fits STOP's head on the rollouts' rewards; 'full' adds "
                                   "drop:12:6:mean_logprob and drop:12:6:stop+refit (default: the small setting's "
                                   "four arms)."),
    seeds: str = typer.Option("0,1,2", help="Training seeds, comma-separated."),
    steps: int = typer.Option(24, help="GRPO steps per run."),
    prompts_per_step: int = typer.Option(8, help="Prompts (groups) per GRPO step."),
    lr: float = typer.Option(1e-4, help="Learning rate (AdamW, constant)."),
    prefix: int = typer.Option(16, "--prefix-tokens", "--prefix", help="Checkpoint L of the pruned arms (tokens)."),
    eval_per_level: int = typer.Option(8, help="Held-out test problems per family and level."),
    eval_paths: int = typer.Option(8, help="Paths per held-out problem at each evaluation."),
    eval_every: int = typer.Option(8, help="Evaluate the policy every this many steps."),
    refit_every: int = typer.Option(4, help="Steps between STOP re-fits in +refit arms."),
    jobs: int = typer.Option(2, help="Runs in parallel (processes, one torch thread each)."),
) -> None:
    """Train the testbed model with GRPO, rollouts unpruned or pruned by a signal; held-out reward against rollout
    tokens over several seeds, tokens per point of reward gained, and the signals' AUROC on fresh rollouts."""
    from ..errors import PathpruneError
    from ..integrations.rl_testbed import FULL, SMALL, RLConfig, figure, markdown_table, run_experiment, summarise, table_rows
    from ..integrations.rl_testbed import TABLE_HEAD
    from ..io.atomic import write_json_atomic, write_text_atomic

    if jobs < 1:
        raise PathpruneError(f"--jobs must be >= 1, got {jobs}", parameter="jobs", value=jobs)
    text = FULL if conditions == "full" else conditions or SMALL
    specs = [c.strip() for c in text.split(",") if c.strip()]
    cfg = RLConfig(conditions=specs, seeds=list(parse_int_list(seeds, "seeds") or ()), steps=steps,
                   prompts_per_step=prompts_per_step, lr=lr, prefix=prefix, eval_per_level=eval_per_level,
                   eval_paths=eval_paths, eval_every=eval_every, refit_every=refit_every)
    try:
        import datasets  # noqa: F401
        import trl  # noqa: F401
    except ImportError as err:
        raise PathpruneError(f"pathprune rl needs TRL and datasets ({err.name} is missing): "
                             "pip install 'pathprune[rl]'") from None
    runs = len(cfg.conditions) * len(cfg.seeds)
    console.print(f"[bold]pathprune rl[/]: {len(cfg.conditions)} arms x {len(cfg.seeds)} seeds, {cfg.steps} GRPO steps "
                  f"of {cfg.prompts_per_step} prompts each on the testbed; {jobs} job(s)")
    with progress_bar() as bar:
        task = bar.add_task("GRPO steps", total=runs * cfg.steps)
        results = run_experiment(cfg, out, jobs=jobs, progress=lambda k: bar.advance(task, k))
    summary = summarise(results)
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "table.md", markdown_table(summary))
    fig = figure(results, out / "rl.png")
    table = Table(title=f"GRPO on the testbed: {cfg.steps} steps x {cfg.prompts_per_step} prompts, seeds {cfg.seeds} "
                        f"(mean ± sd); equal-token budget {summary['equal_tokens']:,} tokens")
    for col in TABLE_HEAD:
        table.add_column(col, justify="right")
    for row in table_rows(summary):
        table.add_row(*row)
    console.print(table)
    console.print(f"table: {out / 'table.md'}  ·  figure: {fig}  ·  runs: {out / 'runs'}")
