"""Reports from an evaluation run directory: paper-style Markdown tables, figures, one HTML file.

``build_report(run_dir)`` rebuilds everything from the logs alone (``pathprune report``):

* ``summary.json`` — metrics of every setting (signal × L × k) with 95 % bootstrap intervals;
* ``report.md`` — the paper's main-table layout (rows model × dataset, columns no pruning and
  each signal with its type, avg@k|N and tokens with the reduction Δ), then the detailed table;
* the equal-budget comparison (:mod:`.budget`): every pruned setting's cons against
  self-consistency (a vote over fewer unpruned paths) at the same tokens, lost / fixed / broken
  problems, and the problems lost by the most signals with their paths' scores;
* ``accuracy_vs_tokens.png`` (cons against tokens: the self-consistency curve and every signal's
  pruned points), ``avg_vs_tokens.png`` (avg@k|N, one curve per signal over k) and
  ``accuracy_vs_retention.png`` (avg@k|N against γ = k/N, one panel per checkpoint);
* ``report.html`` — the tables and the figures embedded, self-contained.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

from ..engine.schedule import parse_checkpoint
from ..io.atomic import write_json_atomic, write_text_atomic
from .budget import equal_budget, worst_problems
from .offline import Setting
from .outcomes import CEILING, outcome_auroc
from .runs import EvalConfig, read_run
from .summary import paired_gain, signal_quality, summarise


@dataclass
class Report:
    rows: list[dict]
    """Summary rows over all problems (every setting)."""
    by_dataset: dict[str, list[dict]]
    markdown: str
    files: list[Path]
    config: EvalConfig
    """The run's configuration (what the rows are settings of)."""


def signal_type(name: str) -> str:
    """The signal's taxonomy type (I–IV or ref), without loading any model."""
    from ..signals import get_signal

    try:
        return get_signal(name).taxonomy
    except Exception:  # a signal that cannot be built here still gets a report row
        return "?"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def main_setting(cfg: EvalConfig, signal: str) -> Setting:
    return Setting(signal, cfg.prefixes[0], cfg.keeps[0])


def at_checkpoint(checkpoint: int | str) -> str:
    """``L = 48 tokens`` or ``step2/96 (the 2nd step, at most 96 tokens)``."""
    length, steps = parse_checkpoint(str(checkpoint))
    return f"L = {length} tokens" if steps is None else f"{checkpoint} (step {steps}, at most {length} tokens)"


def _find(rows: list[dict], setting: Setting) -> dict:
    return next(r for r in rows if r["label"] == setting.label)


def paper_table(cfg: EvalConfig, by_dataset: dict[str, list[dict]]) -> str:
    """Rows model × dataset; columns no pruning and each signal (avg@k|N, tokens per problem, Δ)."""
    k, n, L = cfg.keeps[0], cfg.n, cfg.prefixes[0]
    head = ["model", "dataset", f"no pruning avg@{n}"] + [f"{s} ({signal_type(s)})" for s in cfg.signals]
    lines = [f"avg@{k}|{n} in %, pruned at {at_checkpoint(L)}; tokens per problem (Δ = reduction vs no pruning).",
             "", _md_row(head), "|" + "---|" * len(head)]
    for dataset, rows in by_dataset.items():
        base = _find(rows, Setting(None))
        cells = [cfg.model, f"{dataset} ({base['problems']})",
                 f"{_pct(base['avg'])} · {base['tokens']:,.0f} tok"]
        for s in cfg.signals:
            r = _find(rows, main_setting(cfg, s))
            cells.append(f"{_pct(r['avg'])} · {r['tokens']:,.0f} tok (−{_pct(r['delta'])} %)")
        lines.append(_md_row(cells))
    return "\n".join(lines)


def detail_rows(cfg: EvalConfig, rows: list[dict]) -> list[list[str]]:
    """The main setting of every signal, with intervals, token breakdown and check time."""
    out = []
    for s in [None, *cfg.signals]:
        r = _find(rows, main_setting(cfg, s) if s else Setting(None))
        ci = {m: f"[{_pct(r[m + '_ci'][0])}, {_pct(r[m + '_ci'][1])}]" for m in ("avg", "cons", "delta")}
        vs = r.get("vs_sc")  # absent for no pruning (it is self-consistency at n = N)
        out.append([r["label"], signal_type(s) if s else "–", f"{_pct(r['avg'])} {ci['avg']}",
                    f"{_pct(r['cons'])} {ci['cons']}", _pct(r["pass"]), f"{r['tokens']:,.0f}",
                    f"{_pct(r['delta'])} {ci['delta']}", _gain(vs) if vs else "–", _pct(vs["lost"]) if vs else "–",
                    f"{r['usage']['check']:,}", f"{r['usage']['reencoded']:,}",
                    f"{r['seconds'].get('check', 0.0):.2f}"])
    return out


def _gain(vs: dict) -> str:
    lo, hi = vs["gain_ci"]
    return f"{100 * vs['gain']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]" + (" (n* clamped)" if vs["clamped"] else "")


DETAIL_HEAD = ["setting", "type", "avg@k|N % [95% CI]", "cons@k % [95% CI]", "pass@k %", "tokens/problem",
               "Δ tokens % [95% CI]", "Δ cons vs self-consistency at equal tokens [95% CI]", "lost %",
               "check tok", "re-encoded tok", "check s"]


def _md_row(cells: list[str]) -> str:
    """One Markdown table row; a ``|`` inside a cell (the header ``avg@k|N``) is escaped, else it splits the cell."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _md_cells(line: str) -> list[str]:
    """The cells of a Markdown table row written by :func:`_md_row` (escaped ``\\|`` stays in its cell)."""
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join([_md_row(head), "|" + "---|" * len(head)] + [_md_row(r) for r in rows])


def figures(cfg: EvalConfig, rows: list[dict], out: Path, sc_rows: list[dict]) -> list[Path]:
    """cons vs tokens against self-consistency, avg@k|N vs tokens (curve per signal over k), avg@k|N vs retention."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = _find(rows, Setting(None))
    files = []
    L = cfg.prefixes[0]
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    ax.fill_between([r["tokens"] for r in sc_rows], [100 * r["cons_ci"][0] for r in sc_rows],
                    [100 * r["cons_ci"][1] for r in sc_rows], color="black", alpha=0.12, lw=0)
    ax.plot([r["tokens"] for r in sc_rows], [100 * r["cons"] for r in sc_rows], color="black", lw=1.5,
            label=f"self-consistency, n = 1..{cfg.n} (95 % CI)")
    for s in cfg.signals:
        pts = sorted((_find(rows, Setting(s, L, k)) for k in cfg.keeps), key=lambda r: r["tokens"])
        ax.plot([r["tokens"] for r in pts], [100 * r["cons"] for r in pts], marker="o", lw=0.8,
                label=f"{s} ({signal_type(s)})")
    ax.scatter([base["tokens"]], [100 * base["cons"]], marker="*", s=160, color="black", label="no pruning", zorder=5)
    ax.set_xlim(0, None)  # linear: the pruned points sit in a narrow token range that a log axis squeezes
    ax.set_xlabel("total tokens per problem")
    ax.set_ylabel("cons (final-answer accuracy, %)")
    ax.set_title(f"pruned N = {cfg.n} → k ∈ {sorted(cfg.keeps)} at L = {L} vs self-consistency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    files.append(out / "accuracy_vs_tokens.png")
    fig.tight_layout()
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for s in cfg.signals:
        pts = sorted((_find(rows, Setting(s, L, k)) for k in cfg.keeps), key=lambda r: r["tokens"])
        ax.plot([r["tokens"] for r in pts], [100 * r["avg"] for r in pts], marker="o",
                label=f"{s} ({signal_type(s)})")
    ax.scatter([base["tokens"]], [100 * base["avg"]], marker="*", s=160, color="black", label="no pruning", zorder=5)
    ax.set_xlabel("total tokens per problem")
    ax.set_ylabel(f"avg@k|{cfg.n} (%)")
    ax.set_title(f"avg@k|N vs tokens (N = {cfg.n}, {at_checkpoint(L)}, k ∈ {sorted(cfg.keeps)})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    files.append(out / "avg_vs_tokens.png")
    fig.tight_layout()
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(cfg.prefixes), figsize=(5.2 * len(cfg.prefixes), 4.2), squeeze=False)
    for ax, L in zip(axes[0], sorted(cfg.prefixes, key=lambda c: (isinstance(c, str), parse_checkpoint(str(c))))):
        for s in cfg.signals:
            pts = sorted((_find(rows, Setting(s, L, k)) for k in cfg.keeps), key=lambda r: r["keep"])
            ax.plot([r["keep"] / cfg.n for r in pts], [100 * r["avg"] for r in pts], marker="o", label=s)
        ax.axhline(100 * base["avg"], color="black", ls="--", lw=1, label=f"avg@{cfg.n} (no pruning)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("retention ratio γ = k/N")
        ax.set_ylabel(f"avg@k|{cfg.n} (%)")
        ax.set_title(at_checkpoint(L))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    files.append(out / "accuracy_vs_retention.png")
    fig.tight_layout()
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    return files


def _html(markdown_tables: list[tuple[str, str]], images: list[Path], title: str) -> str:
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;"
             "text-align:right}img{max-width:100%}</style>", f"<h1>{html.escape(title)}</h1>"]
    for heading, table in markdown_tables:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        lines = [line for line in table.splitlines() if line.startswith("|")]
        notes = [line for line in table.splitlines() if line and not line.startswith("|")]
        parts += [f"<p>{html.escape(n)}</p>" for n in notes]
        parts.append("<table>")
        for i, line in enumerate(lines):
            if i == 1:
                continue  # the Markdown rule line
            tag = "th" if i == 0 else "td"
            cells = _md_cells(line)
            parts.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
        parts.append("</table>")
    for img in images:
        data = base64.b64encode(img.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(img.stem.replace('_', ' '))}</h2><img src='data:image/png;base64,{data}'>")
    return "\n".join(parts)


def comparison_tables(cfg: EvalConfig, units: list[dict], paths: dict, n_boot: int) -> list[tuple[str, str]]:
    """Signal quality against the Monte-Carlo label (when an oracle ran) and the STOP signals' paired gains."""
    out = []
    L, k = cfg.prefixes[0], cfg.keeps[0]
    oracle = next((s for s in cfg.signals if s.split(":")[0] == "oracle"), None)
    if oracle:
        rows = signal_quality(units, paths, [s for s in cfg.signals if s != oracle], oracle, L)
        fmt = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
        out.append((f"Signals against the Monte-Carlo label ({oracle} at L = {L})",
                    _md_table(["signal", "type", "prefixes", "AUROC", "within-problem AUROC"],
                              [[r["signal"], signal_type(r["signal"]), str(r["prefixes"]), fmt(r["auroc"]),
                                fmt(r["within_auroc"])] for r in rows])))
    for stop in [s for s in cfg.signals if signal_type(s) == "IV"]:  # the learned internal signals (STOP family)
        rows = []
        for other in [s for s in cfg.signals if s not in (stop, oracle)]:
            mean, lo, hi = paired_gain(units, paths, Setting(stop, L, k), Setting(other, L, k), n_boot=n_boot)
            rows.append([other, signal_type(other), f"{100 * mean:+.1f}", f"[{100 * lo:+.1f}, {100 * hi:+.1f}]"])
        out.append((f"Gain of {stop} in avg@{k}|{cfg.n} over each signal (same paths, paired by problem)",
                    _md_table(["baseline", "type", "gain (points)", "95 % CI"], rows)))
    return out


def outcome_table(cfg: EvalConfig, rows: list[dict]) -> tuple[str, str]:
    """Every signal's within-problem AUROC against its paths' outcomes at the main L, and the prefix ceiling."""
    fmt = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
    body = [[r["signal"], "–" if r["signal"] == CEILING else signal_type(r["signal"]), str(r["problems"]),
             f"{fmt(r['within_auroc'])} [{fmt(r['ci95'][0])}, {fmt(r['ci95'][1])}]",
             "–" if r.get("share_of_ceiling") is None else f"{100 * r['share_of_ceiling']:.0f} %"] for r in rows]
    return (f"Within-problem AUROC against the paths' own outcomes (L = {cfg.prefixes[0]}; share: of the prefix "
            "ceiling's gain over chance)",
            _md_table(["signal", "type", "problems", "AUROC [95 % CI]", "share of ceiling"], body))


def budget_tables(cfg: EvalConfig, rows: list[dict], budget: dict, worst: list[dict]) -> list[tuple[str, str]]:
    """Pruning against self-consistency at equal tokens, the self-consistency curve, the worst problems."""
    L = cfg.prefixes[0]
    table = []
    for s in cfg.signals:
        for k in cfg.keeps:
            r = _find(rows, Setting(s, L, k))
            vs = r["vs_sc"]
            lost_ci = f"[{_pct(vs['lost_ci'][0])}, {_pct(vs['lost_ci'][1])}]"
            table.append([r["label"], signal_type(s), _pct(r["cons"]), f"{r['tokens']:,.0f}", f"{vs['sc_n']:.1f}",
                          _pct(vs["sc_cons"]), _gain(vs), f"{_pct(vs['lost'])} {lost_ci}", _pct(vs["fixed"]),
                          _pct(vs["broken"])])
    note = ("Self-consistency: the majority vote of n of the same unpruned paths, drawn at random (mean over "
            "subsets); at a pruned setting's mean tokens per problem it uses n* = tokens / mean path tokens, its "
            "cons interpolated linearly between the two nearest n (running either n in the right proportions "
            "costs exactly those tokens). Δ is paired by problem. lost: some launched path was right but no kept "
            "path was; fixed / broken: pruning turned the unpruned N-path vote right / wrong.")
    out = [(f"Pruning against self-consistency at equal tokens (L = {L})",
            note + "\n\n" + _md_table(["setting", "type", "cons %", "tokens/problem", "self-consistency n*",
                                        "self-consistency cons %", "Δ cons (points) [95% CI]", "lost % [95% CI]",
                                        "fixed %", "broken %"], table))]
    curve = budget["self_consistency"]
    shown = sorted({r["n"] for r in curve if r["n"] & (r["n"] - 1) == 0} | {curve[-1]["n"]})
    out.append(("Self-consistency on the same paths (no pruning, n random paths voted)",
                _md_table(["n", "tokens/problem", "cons % [95% CI]"],
                          [[str(r["n"]), f"{r['tokens']:,.0f}",
                            f"{_pct(r['cons'])} [{_pct(r['cons_ci'][0])}, {_pct(r['cons_ci'][1])}]"]
                           for r in curve if r["n"] in shown])))
    fmt = lambda x: "–" if x is None else f"{x:.4g}"  # noqa: E731
    for i, w in enumerate(worst, 1):
        head = (f"Worst problem {i}: {w['unit_id']} (lost by {len(w['lost_by'])} of {len(cfg.signals)} signals "
                f"at {L}:{cfg.keeps[0]})")
        note = (f"reference {w['reference']}; {w['right']} of {w['paths']} launched paths right; the unpruned vote is "
                f"{'right' if w['vote_correct'] else 'wrong'}. Rank 1 = the signal's best-scored live path.")
        out.append((head, note + "\n\n" + _md_table(
            ["signal", "type", "right kept", "vote", "best right path: rank", "its score", "last kept score"],
            [[r["signal"], signal_type(r["signal"]), f"{r['kept_right']} of {r['kept']}",
              "right" if r["vote_correct"] else "wrong", fmt(r["best_right_rank"]), fmt(r["best_right_score"]),
              fmt(r["cutoff_score"])] for r in w["signals"]])))
    return out


def build_report(run_dir: str | Path, n_boot: int = 1000) -> Report:
    """Summarise a run directory and write summary.json, report.md, the figures and report.html."""
    run_dir = Path(run_dir)
    cfg, units, paths = read_run(run_dir)
    settings = cfg.settings()
    rows = summarise(units, paths, settings, n_boot=n_boot)
    datasets = sorted({u.get("dataset", "problems") for u in units})
    by_dataset = {d: summarise([u for u in units if u.get("dataset", "problems") == d], paths, settings,
                               n_boot=n_boot) for d in datasets}
    if len(datasets) > 1:
        by_dataset["all"] = rows
    budget = equal_budget(units, paths, settings, n_boot=n_boot)
    for row in rows:
        if row["label"] in budget["settings"]:
            row["vs_sc"] = budget["settings"][row["label"]]
    worst = worst_problems(units, paths, cfg.signals, cfg.prefixes[0], cfg.keeps[0])
    outcomes = {L: outcome_auroc(units, paths, list(cfg.signals), L, n_boot=n_boot) for L in cfg.prefixes}
    write_json_atomic(run_dir / "summary.json", {"config": cfg.__dict__, "rows": rows, "by_dataset": by_dataset,
                                                 "self_consistency": budget["self_consistency"],
                                                 "outcome_auroc": [r for L in cfg.prefixes for r in outcomes[L]],
                                                 "worst_problems": worst})
    images = figures(cfg, rows, run_dir, budget["self_consistency"])
    main = paper_table(cfg, by_dataset)
    detail = _md_table(DETAIL_HEAD, detail_rows(cfg, rows))
    title = f"pathprune evaluation: {cfg.model}, N = {cfg.n}, L = {cfg.prefixes[0]}, k = {cfg.keeps[0]}"
    sections = [("Main table", main), ("All signals at the main setting", detail)]
    extra = comparison_tables(cfg, units, paths, n_boot)
    budget_sections = budget_tables(cfg, rows, budget, worst)
    sections += budget_sections[:2] + [outcome_table(cfg, outcomes[cfg.prefixes[0]])] + extra + budget_sections[2:]
    # (the worst problems close the report)
    markdown = "\n\n".join([f"# {title}"] + [f"## {h}\n\n{t}" for h, t in sections] + ["## Figures"]
                           + [f"![{p.stem}]({p.name})" for p in images]) + "\n"
    write_text_atomic(run_dir / "report.md", markdown)
    page = _html(sections, images, title)
    write_text_atomic(run_dir / "report.html", page)
    files = [run_dir / "summary.json", run_dir / "report.md", run_dir / "report.html", *images]
    return Report(rows, by_dataset, markdown, files, cfg)
