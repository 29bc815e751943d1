"""``pathprune run``: Launch–Check–Resume over a benchmark file or a testbed split."""

from __future__ import annotations

from pathlib import Path

import typer

from .console import console, progress_bar
from .inputs import BACKEND_HELP, checked_backend, unescape


def run(
    out: Path = typer.Option(..., help="Run directory (resumed if it exists with the same config)."),
    model: str = typer.Option("testbed", help="Embedded name, HF directory or .gguf file."),
    benchmark: str = typer.Option(None, help="Benchmark JSON/JSONL file, or wordproblems[:LEVELS[:FORMAT]] "
                                   "(generated; split, count and seed from --testbed-split, --per-level, --seed); "
                                   "default: the testbed suite."),
    testbed_split: str = typer.Option("test", help="Testbed split when no benchmark is given."),
    levels: str = typer.Option(None, help="Testbed difficulty levels, e.g. 4,8."),
    per_level: int = typer.Option(10, help="Testbed problems per family and level."),
    limit: int = typer.Option(None, help="Use only the first problems."),
    signal: str = typer.Option(None, help="Pruning signal NAME[:ARG] (default: random)."),
    schedule: str = typer.Option("none", help="L:k[,L:k...] (e.g. 2048:8 or 512:32,1024:16,2048:8); a stage may "
                                 "pause at reasoning steps, stepM/L:k (e.g. step2/96:4: at the 2nd step, at most "
                                 "96 tokens); none = no pruning."),
    step_delimiter: str = typer.Option("\\n", help="Where a reasoning step ends, for stepM/L stages (decoded text; "
                                       "escapes such as \\n are read)."),
    n: int = typer.Option(16, help="Paths per problem (N)."),
    temperature: float = typer.Option(1.0),
    top_p: float = typer.Option(1.0),
    top_k: int = typer.Option(0),
    max_new_tokens: int = typer.Option(160),
    seed: int = typer.Option(0),
    problems_per_batch: int = typer.Option(4, help="Problems sampled together (N rows each)."),
    backend: str = typer.Option("transformers", help=BACKEND_HELP),
) -> None:
    """Sample N paths per problem, prune at the schedule's checkpoints with a signal, finish the rest, vote."""
    from ..engine import Pruner, SamplingParams, Schedule
    from ..engine.steps import recorded_settings
    from ..evaluation.sources import load_problems
    from ..io.runlog import RunLog, cleaned_on_failure
    from .inputs import checked_signals

    # every input is checked before a model is loaded or anything is written to --out
    checked_backend(backend)
    sampling = SamplingParams(n=n, temperature=temperature, top_p=top_p, top_k=top_k,
                              max_new_tokens=max_new_tokens, seed=seed, step_delimiter=unescape(step_delimiter))
    prunes = bool(Schedule.of(schedule).check(sampling.n, sampling.max_new_tokens).stages)
    [checked] = checked_signals([signal or "random"], prunes=prunes or signal is None)
    problems = load_problems(benchmark, testbed_split, levels, per_level, limit, seed)
    config = {"model": model, "benchmark": benchmark, "testbed_split": testbed_split, "levels": levels,
              "per_level": per_level, "limit": limit, "signal": signal or "random", "schedule": schedule,
              "sampling": recorded_settings(vars(sampling)), "problems_per_batch": problems_per_batch,
              **({"backend": backend} if backend != "transformers" else {})}  # older run directories resume
    if backend == "vllm":
        pruner = Pruner(model, checked, schedule, problems_per_batch=problems_per_batch, backend="vllm")
    else:
        from ..models import load_model

        pruner = Pruner(load_model(model), checked, schedule, problems_per_batch=problems_per_batch)
    with cleaned_on_failure(out):
        _run(RunLog(out, config), pruner, problems, sampling, problems_per_batch, out)


def _run(log, pruner, problems, sampling, problems_per_batch: int, out: Path) -> None:
    """Solve the problems not yet in ``log``, then write and print the summary."""
    from ..evaluation.problems import solve
    from ..io.atomic import write_json_atomic

    todo = [p for p in problems if p.id not in log.done]
    with progress_bar() as bar:
        task = bar.add_task("problems", total=len(problems), completed=len(problems) - len(todo))
        for start in range(0, len(todo), problems_per_batch):
            for res in solve(pruner, todo[start:start + problems_per_batch], sampling):
                log.append(res.as_dict(), res.path_rows())
                bar.advance(task)
    rows = log.units
    summary = {
        "problems": len(rows),
        "accuracy_vote": sum(r["correct"] for r in rows) / max(1, len(rows)),
        "accuracy_kept_paths": (sum(p["correct"] for p in log.items if p["kept"])
                                / max(1, sum(p["kept"] for p in log.items))),
        "usage": {k: sum(r["usage"][k] for r in rows) for k in rows[0]["usage"]} if rows else {},
        "times": {k: round(sum(r["times"][k] for r in rows), 3) for k in rows[0]["times"]} if rows else {},
    }
    write_json_atomic(Path(out) / "summary.json", summary)
    console.print(f"{summary['problems']} problems  vote accuracy {summary['accuracy_vote']:.3f}  "
                  f"kept-path accuracy {summary['accuracy_kept_paths']:.3f}  "
                  f"generated tokens {summary['usage'].get('generated', 0)}")
