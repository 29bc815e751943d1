"""The GRPO experiment on the testbed behind ``pathprune rl``: no pruning vs pruned rollouts.

Each run trains the testbed model with TRL's ``GRPOTrainer`` (exact 0/1 rewards) from the shipped checkpoint,
its rollouts drawn by :func:`pathprune.integrations.trl.pruned_rollout` (the unpruned baseline runs through
the same engine with no schedule, so every arm samples alike). Every ``eval_every`` steps the current policy
samples ``eval_paths`` paths on held-out test problems: their mean reward is the held-out reward, and the
signals' scores of the same paths at the checkpoint give each signal's within-problem AUROC on fresh
rollouts of the current policy (the fixed STOP module, the re-fitted one where an arm re-fits, mean
log-probability), which is where a stale STOP would show.

Arms (``--conditions``), each ``MODE:N[:K:SIGNAL[+refit]]``: ``none:8`` (G = 8 unpruned samples),
``drop:12:6:stop`` (launch 12, keep the 6 best at L, the group is those 6), ``truncate:12:6:stop`` (launch 12,
finish 6, the group is all 12 with the 6 pruned prefixes at reward 0), ``drop:12:6:stop+refit`` (STOP's head
re-fitted every ``refit_every`` steps on the rollouts' own rewards).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import PathpruneError
from ..io.atomic import write_json_atomic

MODES = ("none", "drop", "truncate")


@dataclass(frozen=True)
class Condition:
    """One arm: how rollouts are drawn and what the group holds."""

    mode: str
    n: int
    keep: int | None = None
    signal: str | None = None
    refit: bool = False

    @property
    def group(self) -> int:
        """G, the trainer's ``num_generations``."""
        return self.keep if self.mode == "drop" else self.n

    @property
    def name(self) -> str:
        if self.mode == "none":
            return f"none:{self.n}"
        return f"{self.mode}:{self.n}:{self.keep}:{self.signal}" + ("+refit" if self.refit else "")

    @classmethod
    def parse(cls, spec: str) -> Condition:
        parts = spec.strip().split(":")
        bad = PathpruneError(f"bad condition {spec!r}: expected none:G, drop:N:K:SIGNAL, truncate:N:K:SIGNAL "
                             "(SIGNAL may end in +refit, e.g. drop:12:6:stop+refit)", parameter="conditions",
                             value=spec)
        if not parts or parts[0] not in MODES:
            raise bad
        try:
            if parts[0] == "none":
                if len(parts) != 2:
                    raise bad
                cond = cls("none", int(parts[1]))
            else:
                if len(parts) < 4:
                    raise bad
                signal = ":".join(parts[3:])
                refit = signal.endswith("+refit")
                cond = cls(parts[0], int(parts[1]), int(parts[2]), signal.removesuffix("+refit"), refit)
        except ValueError:
            raise bad from None
        if cond.n < 2 or (cond.keep is not None and not 1 <= cond.keep < cond.n):
            raise PathpruneError(f"condition {spec!r}: need N >= 2 and 1 <= K < N", parameter="conditions", value=spec)
        if cond.mode == "drop" and cond.keep < 2:
            raise PathpruneError(f"condition {spec!r}: a GRPO group needs K >= 2", parameter="conditions", value=spec)
        return cond


SMALL = "none:8,drop:12:6:stop,drop:16:8:stop,truncate:12:6:stop"
"""The small setting's arms: no pruning, pruned at the same tokens per step, at the same group size, truncated."""
FULL = SMALL + ",drop:12:6:mean_logprob,drop:12:6:stop+refit"
"""Adds the drift arms: Type III confidence (always current) and STOP re-fitted on the rollouts' rewards."""


@dataclass
class RLConfig:
    """The experiment's settings (the defaults are the small setting of ``pathprune rl``)."""

    conditions: list[str] = field(default_factory=lambda: SMALL.split(","))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    steps: int = 24
    prompts_per_step: int = 8
    lr: float = 1e-4
    prefix: int = 16
    """The checkpoint L (tokens) of every pruned arm."""
    train_levels: dict = field(default_factory=lambda: {"chain": [6, 8], "list": [4, 6]})
    eval_per_level: int = 8
    """Held-out test problems per family and level (the same levels as training)."""
    eval_paths: int = 8
    eval_every: int = 8
    refit_every: int = 4
    max_new_tokens: int = 160
    threads: int = 1

    def __post_init__(self) -> None:
        for name in ("steps", "prompts_per_step", "prefix", "eval_per_level", "eval_paths", "eval_every",
                     "refit_every", "max_new_tokens", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PathpruneError(f"{name} must be an integer >= 1, got {value!r}", parameter=name, value=value)
        if self.eval_paths < 2:
            raise PathpruneError("eval_paths must be >= 2 (a within-problem AUROC needs two paths)")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise PathpruneError(f"lr must be a number > 0, got {self.lr!r}", parameter="lr", value=self.lr)
        if not self.seeds or not self.conditions:
            raise PathpruneError("give at least one seed and one condition")
        if len(set(self.seeds)) != len(self.seeds) or len(set(self.conditions)) != len(self.conditions):
            raise PathpruneError("seeds and conditions must not repeat")
        for spec in self.conditions:
            self.condition(spec)
        if self.prefix >= self.max_new_tokens:
            raise PathpruneError(f"the checkpoint {self.prefix} must be below max_new_tokens={self.max_new_tokens}")

    def condition(self, spec: str) -> Condition:
        cond = Condition.parse(spec)
        if cond.signal is not None:
            from ..engine.registry import get_signal
            from ..signals.stop_signal import StopSignal

            signal = get_signal(cond.signal)
            signal.validate()
            if cond.refit and not isinstance(signal, StopSignal):
                raise PathpruneError(f"condition {spec!r}: +refit re-fits a STOP signal", parameter="conditions",
                                     value=spec)
        return cond


def problems(cfg: RLConfig, split: str, per_level: int, seed: int = 0):
    from ..testbed.problems import generate

    return [p for family, levels in cfg.train_levels.items() for d in levels
            for p in generate(family, d, per_level, split, seed)]


def evaluate(model, tokenizer, held_out, signals: list, cfg: RLConfig) -> dict:
    """Held-out reward of the current policy and each signal's within-problem AUROC on the same fresh paths."""
    from ..engine.sampling import SamplingParams
    from ..evaluation.harness import SharedLaunch
    from ..stats import within_problem_auroc

    launch = SharedLaunch(model, tokenizer, signals, [cfg.prefix],
                          SamplingParams(n=cfg.eval_paths, max_new_tokens=cfg.max_new_tokens, seed=10_000),
                          problems_per_batch=8)
    rows = [p for log in launch.run(held_out) for p in log.paths]
    right = [int(p["correct"]) for p in rows]
    groups = [p["problem_id"] for p in rows]
    auroc = {}
    for name in launch.names:
        scores = [p["signals"].get(name, {}).get(str(cfg.prefix), [float("-inf")])[0] for p in rows]
        auroc[name] = within_problem_auroc(scores, right, groups)
    return {"reward": sum(right) / len(right), "auroc": auroc, "paths": len(rows),
            "eval_tokens": sum(p["tokens"] for p in rows)}


def run_one(spec: str, seed: int, cfg: RLConfig, progress: Callable[[int], None] | None = None) -> dict:
    """Train one arm with one seed; returns its curves (held-out reward and AUROCs against rollout tokens)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' renamed-argument notices, every step
        return _run_one(spec, seed, cfg, progress)


def _run_one(spec: str, seed: int, cfg: RLConfig, progress: Callable[[int], None] | None) -> dict:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    import tempfile

    import torch
    import transformers
    from datasets import Dataset
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import GRPOConfig, GRPOTrainer

    from ..engine.registry import get_signal
    from ..models import load_model
    from ..tasks.answers import extract_answer
    from ..tasks.grading import answers_equal
    from .stop_refit import RefitStop
    from .trl import pruned_rollout

    torch.set_num_threads(cfg.threads)
    transformers.logging.disable_progress_bar()
    cond = cfg.condition(spec)
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    policy, tok = load_model("testbed")
    policy.train()
    train = problems(cfg, "train", max(64, cfg.steps * cfg.prompts_per_step // 4 + 8), seed=seed)
    held_out = problems(cfg, "test", cfg.eval_per_level)
    data = Dataset.from_list([{"prompt": p.prompt, "answer": p.answer} for p in train])
    schedule = None if cond.mode == "none" else f"{cfg.prefix}:{cond.keep}"
    rollout = pruned_rollout(cond.signal, schedule, cond.n, pruned="truncate" if cond.mode == "truncate" else "drop",
                             seed=seed, refit_every=cfg.refit_every if cond.refit else None)

    def correct(prompts, completions, answer, **_):
        return [float(answers_equal(a, extract_answer(c, "testbed"), "testbed")) for c, a in zip(completions, answer)]

    eval_signals = [get_signal("stop"), get_signal("mean_logprob")]
    if isinstance(rollout.signal, RefitStop):
        eval_signals.append(rollout.signal)
    curve: list[dict] = []
    train_log: list[dict] = []

    def checkpoint(step: int) -> None:
        model = rollout.sync(policy, tok)
        row = evaluate(model, tok, held_out, eval_signals, cfg)
        curve.append({"step": step, "tokens": rollout.totals.generated, "check_tokens": rollout.totals.check,
                      **row})

    class Hooks(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            checkpoint(0)

        def on_step_end(self, args, state, control, **kw):
            if state.global_step % cfg.eval_every == 0 or state.global_step == cfg.steps:
                checkpoint(state.global_step)
            if progress:
                progress(1)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "reward" in logs:
                train_log.append({"step": state.global_step,
                                  **{k: logs.get(k) for k in ("reward", "frac_reward_zero_std", "entropy", "loss")}})

    with tempfile.TemporaryDirectory(prefix="pathprune-rl-") as tmp:
        args = GRPOConfig(output_dir=tmp, num_generations=cond.group,
                          per_device_train_batch_size=cfg.prompts_per_step * cond.group,
                          max_completion_length=cfg.max_new_tokens, learning_rate=cfg.lr, lr_scheduler_type="constant",
                          max_steps=cfg.steps, logging_steps=1, report_to="none", use_cpu=True, save_strategy="no",
                          seed=seed, data_seed=seed, temperature=1.0, beta=0.0, disable_tqdm=True,
                          dataloader_num_workers=0)
        trainer = GRPOTrainer(model=policy, reward_funcs=rollout.reward(correct), args=args, train_dataset=data,
                              processing_class=tok, rollout_func=rollout, callbacks=[Hooks()])
        for cb in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(cb)
        trainer.train()
    if not curve or curve[-1]["step"] != cfg.steps:
        checkpoint(cfg.steps)
    return {"condition": cond.name, "mode": cond.mode, "group": cond.group, "n": cond.n, "keep": cond.keep,
            "signal": cond.signal, "refit": cond.refit, "seed": seed, "curve": curve, "train": train_log,
            "rollouts": rollout.history, "totals": rollout.totals.as_dict(), "refits": rollout.refits,
            "seconds": round(time.perf_counter() - t0, 1)}


def _run_file(out: Path, spec: str, seed: int) -> Path:
    safe = spec.replace(":", "_").replace("+", "-")
    return out / "runs" / f"{safe}-seed{seed}.json"


def run_settings(cfg: RLConfig) -> dict:
    """What a run's result depends on besides its arm and seed (a finished run is reused when these match)."""
    return {k: v for k, v in asdict(cfg).items() if k not in ("conditions", "seeds")}


def _finished(out: Path, spec: str, seed: int, cfg: RLConfig) -> dict | None:
    f = _run_file(out, spec, seed)
    if not f.is_file():
        return None
    try:
        result = json.loads(f.read_text())
    except json.JSONDecodeError:
        return None
    return result if result.get("settings") == json.loads(json.dumps(run_settings(cfg))) else None


def _worker(args) -> tuple[str, int, dict]:
    spec, seed, cfg_dict, out = args
    cfg = RLConfig(**cfg_dict)
    result = {**run_one(spec, seed, cfg), "settings": run_settings(cfg)}
    write_json_atomic(_run_file(Path(out), spec, seed), result)
    return spec, seed, result


def run_experiment(cfg: RLConfig, out: str | Path, *, jobs: int = 1,
                   progress: Callable[[int], None] | None = None) -> list[dict]:
    """Every (condition, seed) run, reusing a run file in ``out/runs/`` made with the same settings;
    ``jobs`` runs in parallel processes (one torch thread each by default)."""
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "config.json", {"rl": asdict(cfg)})
    todo, results = [], {}
    for spec in cfg.conditions:
        for seed in cfg.seeds:
            done = _finished(out, spec, seed, cfg)
            if done is not None:
                results[(spec, seed)] = done
                if progress:
                    progress(cfg.steps)
            else:
                todo.append((spec, seed))
    if jobs <= 1 or len(todo) <= 1:
        for spec, seed in todo:
            result = {**run_one(spec, seed, cfg, progress), "settings": run_settings(cfg)}
            write_json_atomic(_run_file(out, spec, seed), result)
            results[(spec, seed)] = result
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_worker, (spec, seed, asdict(cfg), str(out))) for spec, seed in todo]
            for fut in as_completed(futures):
                spec, seed, result = fut.result()
                results[(spec, seed)] = result
                if progress:
                    progress(cfg.steps)
    return [results[(spec, seed)] for spec in cfg.conditions for seed in cfg.seeds]


# -- summary, table, figure ----------------------------------------------------------------------
def _interp(curve: list[dict], tokens: float) -> float:
    """Held-out reward at ``tokens`` rollout tokens, linearly between evaluation points."""
    pts = [(c["tokens"], c["reward"]) for c in curve]
    for (t0, r0), (t1, r1) in zip(pts, pts[1:]):
        if t0 <= tokens <= t1:
            return r0 + (r1 - r0) * (tokens - t0) / max(1, t1 - t0)
    return pts[-1][1] if tokens > pts[-1][0] else pts[0][1]


def _mean_sd(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    m = sum(values) / len(values)
    sd = (sum((v - m) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return m, sd


def summarise(results: list[dict]) -> dict:
    """Per condition, over seeds: tokens, held-out reward (start, end, at equal tokens), tokens per point of
    reward gained, AUROCs at the start and the end, zero-variance groups."""
    conditions = list(dict.fromkeys(r["condition"] for r in results))
    equal = min(r["curve"][-1]["tokens"] for r in results)  # the budget every arm reached
    rows = []
    for name in conditions:
        runs = [r for r in results if r["condition"] == name]
        first, last = runs[0]["curve"][0], runs[0]["curve"][-1]
        start = [r["curve"][0]["reward"] for r in runs]
        end = [r["curve"][-1]["reward"] for r in runs]
        gain = [e - s for s, e in zip(start, end)]
        at_equal = [_interp(r["curve"], equal) - r["curve"][0]["reward"] for r in runs]
        tokens = [r["curve"][-1]["tokens"] for r in runs]
        steps = max(1, last["step"] - first["step"])
        per_point = [t / (100 * g) if g > 0 else None for t, g in zip(tokens, gain)]
        aurocs = {}
        for sig in runs[0]["curve"][0]["auroc"]:
            aurocs[sig] = {"start": _mean_sd([r["curve"][0]["auroc"][sig] for r in runs]),
                           "end": _mean_sd([r["curve"][-1]["auroc"][sig] for r in runs])}
        zero = [sum(x["frac_reward_zero_std"] or 0 for x in r["train"]) / max(1, len(r["train"])) for r in runs]
        pruned = [r["totals"]["pruned"] / max(1, r["totals"]["launched"]) for r in runs]
        rows.append({
            "condition": name, "mode": runs[0]["mode"], "group": runs[0]["group"], "n": runs[0]["n"],
            "seeds": len(runs), "tokens_per_step": _mean_sd([t / steps for t in tokens]),
            "check_per_step": _mean_sd([r["curve"][-1]["check_tokens"] / steps for r in runs]),
            "reward_start": _mean_sd(start), "reward_end": _mean_sd(end), "gain": _mean_sd(gain),
            "gain_at_equal_tokens": _mean_sd(at_equal), "tokens_per_point": _mean_sd(per_point),
            "per_point_defined": sum(p is not None for p in per_point),
            "auroc": aurocs, "zero_std_groups": _mean_sd(zero), "pruned_share": _mean_sd(pruned),
            "seconds": _mean_sd([r["seconds"] for r in runs])})
    return {"equal_tokens": equal, "rows": rows}


def _fmt(ms: tuple[float, float], scale: float = 1.0, digits: int = 1, sign: bool = False) -> str:
    m, sd = ms
    if m is None or math.isnan(m):
        return "–"
    f = f"{{:{'+' if sign else ''}.{digits}f}}"
    return f"{f.format(m * scale)} ± {sd * scale:.{digits}f}"


TABLE_HEAD = ["arm", "G", "N", "pruned", "rollout tokens/step", "held-out reward start → end %",
              "gain (points)", "gain at equal tokens (points)", "k tokens per point", "zero-var groups %",
              "STOP AUROC start → end", "re-fit STOP end", "mean-logprob AUROC end"]


def table_rows(summary: dict) -> list[list[str]]:
    out = []
    for r in summary["rows"]:
        au = r["auroc"]
        stop = au.get("stop", {})
        refit = next((v for k, v in au.items() if k.endswith("@refit")), None)
        per_point = _fmt(r["tokens_per_point"], 1e-3, 1) if r["per_point_defined"] == r["seeds"] else (
            f"{_fmt(r['tokens_per_point'], 1e-3, 1)} ({r['per_point_defined']}/{r['seeds']} seeds gained)")
        out.append([
            r["condition"], str(r["group"]), str(r["n"]), f"{100 * r['pruned_share'][0]:.0f} %",
            f"{r['tokens_per_step'][0]:,.0f}",
            f"{100 * r['reward_start'][0]:.1f} → {_fmt(r['reward_end'], 100)}",
            _fmt(r["gain"], 100, 1, True), _fmt(r["gain_at_equal_tokens"], 100, 1, True), per_point,
            _fmt(r["zero_std_groups"], 100, 0),
            f"{stop['start'][0]:.3f} → {_fmt(stop['end'], 1, 3)}" if stop else "–",
            _fmt(refit["end"], 1, 3) if refit else "–",
            _fmt(au["mean_logprob"]["end"], 1, 3) if "mean_logprob" in au else "–"])
    return out


def markdown_table(summary: dict) -> str:
    lines = ["| " + " | ".join(TABLE_HEAD) + " |", "|" + "---|" * len(TABLE_HEAD)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(summary)]
    return "\n".join(lines) + "\n"


def figure(results: list[dict], path: str | Path) -> Path:
    """Held-out reward against rollout tokens (mean over seeds, thin lines per seed) and the signals'
    within-problem AUROC on fresh rollouts across training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = list(dict.fromkeys(r["condition"] for r in results))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(conditions):
        runs = [r for r in results if r["condition"] == name]
        c = colours[i % len(colours)]
        for r in runs:
            ax.plot([p["tokens"] / 1e3 for p in r["curve"]], [100 * p["reward"] for p in r["curve"]], color=c,
                    alpha=0.25, lw=0.8)
        k = min(len(r["curve"]) for r in runs)
        xs = [sum(r["curve"][j]["tokens"] for r in runs) / len(runs) / 1e3 for j in range(k)]
        ys = [100 * sum(r["curve"][j]["reward"] for r in runs) / len(runs) for j in range(k)]
        ax.plot(xs, ys, color=c, lw=2, marker="o", ms=3, label=name)
        steps = [runs[0]["curve"][j]["step"] for j in range(k)]

        def auroc(key: str) -> list[float]:
            return [sum(r["curve"][j]["auroc"][key] or 0 for r in runs) / len(runs) for j in range(k)]

        bx.plot(steps, auroc("stop"), color=c, lw=1.8, marker="o", ms=3, label=f"{name}: STOP (fixed)")
        for key in runs[0]["curve"][0]["auroc"]:
            if key.endswith("@refit"):
                bx.plot(steps, auroc(key), color=c, ls="--", lw=1.5, label=f"{name}: STOP re-fitted")
        if runs[0]["mode"] == "none":
            bx.plot(steps, auroc("mean_logprob"), color=c, ls=":", lw=1.5, label=f"{name}: mean log-prob")
    ax.set_xlabel("rollout tokens generated (thousands, pruned prefixes included)")
    ax.set_ylabel("held-out reward (% right, pass@1)")
    ax.set_title("GRPO on the testbed: held-out reward vs rollout tokens")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    bx.set_xlabel("GRPO step")
    bx.set_ylabel("within-problem AUROC on fresh rollouts")
    bx.set_title("signals on fresh rollouts of the current policy")
    bx.grid(alpha=0.3)
    bx.axhline(0.5, color="grey", lw=0.8, ls="--")
    bx.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
