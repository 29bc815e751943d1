"""Reports from an evaluation run directory: paper-style Markdown tables, figures, one HTML file.

``build_report(run_dir)`` rebuilds everything from the logs alone (``pathprune report``):

* ``summary.json`` — metrics of every setting (signal × L × k) with 95 % bootstrap intervals;
* ``report.md`` — the paper's main-table layout (rows model × dataset, columns no pruning and
  each signal with its type, avg@k|N and tokens with the reduction Δ), then the detailed table;
* ``accuracy_vs_tokens.png`` (one curve per signal over k) and ``accuracy_vs_retention.png``
  (avg@k|N against γ = k/N, one panel per checkpoint);
* ``report.html`` — the tables and the figures embedded, self-contained.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from ..io.runlog import write_json_atomic
from .offline import Setting
from .runs import EvalConfig, read_run
from .summary import paired_gain, signal_quality, summarise


@dataclass
class Report:
    rows: list[dict]
    """Summary rows over all problems (every setting)."""
    by_dataset: dict[str, list[dict]]
    markdown: str
    files: list[Path]


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


def _find(rows: list[dict], setting: Setting) -> dict:
    return next(r for r in rows if r["label"] == setting.label)


def paper_table(cfg: EvalConfig, by_dataset: dict[str, list[dict]]) -> str:
    """Rows model × dataset; columns no pruning and each signal (avg@k|N, tokens per problem, Δ)."""
    k, n, L = cfg.keeps[0], cfg.n, cfg.prefixes[0]
    head = ["model", "dataset", f"no pruning avg@{n}"] + [f"{s} ({signal_type(s)})" for s in cfg.signals]
    lines = [f"avg@{k}|{n} in %, pruned at L = {L} tokens; tokens per problem (Δ = reduction vs no pruning).",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for dataset, rows in by_dataset.items():
        base = _find(rows, Setting(None))
        cells = [cfg.model, f"{dataset} ({base['problems']})",
                 f"{_pct(base['avg'])} · {base['tokens']:,.0f} tok"]
        for s in cfg.signals:
            r = _find(rows, main_setting(cfg, s))
            cells.append(f"{_pct(r['avg'])} · {r['tokens']:,.0f} tok (−{_pct(r['delta'])} %)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def detail_rows(cfg: EvalConfig, rows: list[dict]) -> list[list[str]]:
    """The main setting of every signal, with intervals, token breakdown and check time."""
    out = []
    for s in [None, *cfg.signals]:
        r = _find(rows, main_setting(cfg, s) if s else Setting(None))
        ci = {m: f"[{_pct(r[m + '_ci'][0])}, {_pct(r[m + '_ci'][1])}]" for m in ("avg", "cons", "delta")}
        out.append([r["label"], signal_type(s) if s else "–", f"{_pct(r['avg'])} {ci['avg']}",
                    f"{_pct(r['cons'])} {ci['cons']}", _pct(r["pass"]), f"{r['tokens']:,.0f}",
                    f"{_pct(r['delta'])} {ci['delta']}", f"{r['usage']['check']:,}", f"{r['usage']['reencoded']:,}",
                    f"{r['seconds'].get('check', 0.0):.2f}"])
    return out


DETAIL_HEAD = ["setting", "type", "avg@k|N % [95% CI]", "cons@k % [95% CI]", "pass@k %", "tokens/problem",
               "Δ tokens % [95% CI]", "check tok", "re-encoded tok", "check s"]


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(r) + " |" for r in rows])


def figures(cfg: EvalConfig, rows: list[dict], out: Path) -> list[Path]:
    """Accuracy vs tokens (curve per signal over k) and accuracy vs retention (panel per L)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = _find(rows, Setting(None))
    files = []
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    L = cfg.prefixes[0]
    for s in cfg.signals:
        pts = sorted((_find(rows, Setting(s, L, k)) for k in cfg.keeps), key=lambda r: r["tokens"])
        ax.plot([r["tokens"] for r in pts], [100 * r["avg"] for r in pts], marker="o",
                label=f"{s} ({signal_type(s)})")
    ax.scatter([base["tokens"]], [100 * base["avg"]], marker="*", s=160, color="black", label="no pruning", zorder=5)
    ax.set_xlabel("total tokens per problem")
    ax.set_ylabel(f"avg@k|{cfg.n} (%)")
    ax.set_title(f"accuracy vs tokens (N = {cfg.n}, L = {L}, k ∈ {sorted(cfg.keeps)})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    files.append(out / "accuracy_vs_tokens.png")
    fig.tight_layout()
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(cfg.prefixes), figsize=(5.2 * len(cfg.prefixes), 4.2), squeeze=False)
    for ax, L in zip(axes[0], sorted(cfg.prefixes)):
        for s in cfg.signals:
            pts = sorted((_find(rows, Setting(s, L, k)) for k in cfg.keeps), key=lambda r: r["keep"])
            ax.plot([r["keep"] / cfg.n for r in pts], [100 * r["avg"] for r in pts], marker="o", label=s)
        ax.axhline(100 * base["avg"], color="black", ls="--", lw=1, label=f"avg@{cfg.n} (no pruning)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("retention ratio γ = k/N")
        ax.set_ylabel(f"avg@k|{cfg.n} (%)")
        ax.set_title(f"L = {L} tokens")
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
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
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
    write_json_atomic(run_dir / "summary.json", {"config": cfg.__dict__, "rows": rows, "by_dataset": by_dataset})
    images = figures(cfg, rows, run_dir)
    main = paper_table(cfg, by_dataset)
    detail = _md_table(DETAIL_HEAD, detail_rows(cfg, rows))
    title = f"pathprune evaluation: {cfg.model}, N = {cfg.n}, L = {cfg.prefixes[0]}, k = {cfg.keeps[0]}"
    sections = [("Main table", main), ("All signals at the main setting", detail)]
    extra = comparison_tables(cfg, units, paths, n_boot)
    sections += extra
    markdown = "\n\n".join([f"# {title}"] + [f"## {h}\n\n{t}" for h, t in sections] + ["## Figures"]
                           + [f"![{p.stem}]({p.name})" for p in images]) + "\n"
    (run_dir / "report.md.tmp").write_text(markdown)
    (run_dir / "report.md.tmp").replace(run_dir / "report.md")
    page = _html(sections, images, title)
    (run_dir / "report.html.tmp").write_text(page)
    (run_dir / "report.html.tmp").replace(run_dir / "report.html")
    files = [run_dir / "summary.json", run_dir / "report.md", run_dir / "report.html", *images]
    return Report(rows, by_dataset, markdown, files)
