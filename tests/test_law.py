"""The deployment scaling law: every cell of the paper's Tables 14–15, the fit, files and the CLI."""

import json
import math
import random

import pytest

from pathprune.cli import main
from pathprune.errors import PathpruneError
from pathprune.evaluation.law import (
    PAPER, UNIT, LawConstants, LawPoint, envelope_points, fit, fit_from_runs, gamma_inverse, keep_for, load_points,
    parse_tokens, paths_for_budget, point_record, retention,
)

# The paper's Tables 14 (GPQA-like, L_task ≈ 8,650) and 15 (AIME-like, L_task ≈ 11,950), copied from the
# shared folder's reference/stop-paper.md. Columns are C in the paper's "k" = 1,024 tokens; rows L_prefix in tokens.
TABLE_14 = (8650, [140, 160, 180, 200, 220, 240, 260, 280, 300], {
    512: [5.23, 5.56, 5.87, 6.16, 6.44, 6.70, 6.95, 7.19, 7.42],
    1024: [6.90, 7.34, 7.75, 8.13, 8.49, 8.84, 9.17, 9.49, 9.80],
    1536: [8.11, 8.63, 9.11, 9.56, 9.99, 10.40, 10.79, 11.16, 11.52],
    2048: [9.10, 9.68, 10.22, 10.73, 11.21, 11.67, 12.10, 12.52, 12.93],
    2560: [9.95, 10.59, 11.17, 11.73, 12.26, 12.76, 13.23, 13.69, 14.13],
})
TABLE_15 = (11950, [200, 250, 300, 350, 400, 450, 500, 550, 600], {
    1024: [1.87, 2.07, 2.25, 2.42, 2.57, 2.71, 2.85, 2.98, 3.10],
    2048: [2.47, 2.73, 2.97, 3.19, 3.39, 3.58, 3.76, 3.93, 4.09],
    3072: [2.90, 3.21, 3.49, 3.75, 3.99, 4.21, 4.42, 4.62, 4.81],
    4096: [3.25, 3.60, 3.92, 4.21, 4.48, 4.72, 4.96, 5.18, 5.39],
    5120: [3.56, 3.94, 4.29, 4.60, 4.89, 5.17, 5.42, 5.66, 5.90],
})
CELLS = [(name, task, prefix, c, v)
         for name, (task, cols, rows) in (("T14", TABLE_14), ("T15", TABLE_15))
         for prefix, vals in rows.items() for c, v in zip(cols, vals, strict=True)]


def test_all_cells_listed():
    assert len(CELLS) == 90


@pytest.mark.parametrize("name,task,prefix,c_k,expected", CELLS,
                         ids=[f"{n}-P{p}-C{c}k" for n, _, p, c, _ in CELLS])
def test_table_cell(name, task, prefix, c_k, expected):
    got = gamma_inverse(c_k * UNIT, prefix, task)
    assert f"{got:.2f}" == f"{expected:.2f}"
    # the same cell through the paper's "140k" notation
    assert gamma_inverse(parse_tokens(f"{c_k}k"), prefix, task) == got


def test_worked_examples():
    assert round(gamma_inverse(parse_tokens("158k"), 2048, 8650), 2) == 9.63
    assert round(retention(parse_tokens("158k"), 2048, 8650), 2) == 0.10
    assert round(gamma_inverse(parse_tokens("275k"), parse_tokens("3k"), 11950), 2) == 3.36


def test_thousand_is_not_the_unit():
    """With 1k = 1,000 tokens the tables do not reproduce: the unit really is 1,024."""
    assert round(gamma_inverse(140_000, 512, 8650), 2) != 5.23


def test_clipping_and_keep():
    assert gamma_inverse(10 * UNIT, 2048, 30_000) < 1
    assert retention(10 * UNIT, 2048, 30_000) == 1.0
    assert keep_for(64, 1 / 9.63) == 7
    assert keep_for(64, 1 / 8) == 8
    assert keep_for(10, 0.25) == 3  # 2.5 rounds up
    assert keep_for(64, 1e-6) == 1 and keep_for(5, 1.0) == 5
    for bad in ((0, 0.5), (8, 0.0), (8, 1.5), (8, float("nan"))):
        with pytest.raises(PathpruneError):
            keep_for(*bad)
    # the cost model: N·L_prefix + k·(L_task − L_prefix) tokens
    assert paths_for_budget(64 * 2048 + 8 * (8650 - 2048), 2048, 8650, 1 / 8) == 64


@pytest.mark.parametrize("text,tokens", [("140k", 143_360), ("8650", 8650), ("1.5k", 1536), ("1M", UNIT ** 2),
                                         ("12,000", 12_000), (512, 512)])
def test_parse_tokens(text, tokens):
    assert parse_tokens(text) == tokens


@pytest.mark.parametrize("text", ["abc", "-5", "0", "k", "", "nan"])
def test_parse_tokens_rejects(text):
    with pytest.raises(PathpruneError):
        parse_tokens(text, "budget")


# ------------------------------------------------------------------------------------------------ fit

TRUE = LawConstants(a=3.0e3, b=0.52, c=0.31, d=3.9)


def synthetic(law=TRUE, noise=0.0, seed=0):
    rng = random.Random(seed)
    pts = []
    for C in (100, 200, 400, 800):
        for P in (512, 1024, 2048):
            for T in (6000, 9000, 13000):
                g = 1 / gamma_inverse(C * UNIT, P, T, law) * math.exp(rng.gauss(0, noise))
                pts.append(LawPoint(C * UNIT, P, T, min(g, 1.0)))
    return pts


def test_fit_recovers_exact_constants():
    pts = synthetic()
    assert all(p.gamma < 1 for p in pts)
    law = fit(pts)
    for name in "abcd":
        assert getattr(law, name) == pytest.approx(getattr(TRUE, name), rel=1e-9)
    assert law.r2 == pytest.approx(1.0) and law.rmse < 1e-9 and law.n_points == len(pts)


def test_fit_recovers_paper_constants_from_the_tables():
    pts = [LawPoint(c * UNIT, p, t, 1 / v) for _, t, p, c, v in CELLS]
    law = fit(pts)
    assert law.a == pytest.approx(PAPER.a, rel=0.02)
    for name in "bcd":
        assert getattr(law, name) == pytest.approx(getattr(PAPER, name), abs=0.005)
    assert law.r2 > 0.9999 and law.rmse < 0.002


def test_fit_with_noise():
    law = fit(synthetic(noise=0.1, seed=1))
    assert law.b == pytest.approx(TRUE.b, abs=0.06)
    assert law.c == pytest.approx(TRUE.c, abs=0.08)
    assert law.d == pytest.approx(TRUE.d, abs=0.25)
    assert 0.8 < law.r2 < 1.0
    assert 0.05 < law.rmse < 0.15 and len(law.residuals) == 36
    assert sum(law.residuals) == pytest.approx(0.0, abs=1e-9)  # least squares with an intercept


def test_fit_needs_four_points():
    with pytest.raises(PathpruneError, match="at least 4 points"):
        fit(synthetic()[:3])


def test_fit_explains_a_variable_that_never_varies():
    pts = [p for p in synthetic() if p.prefix_tokens == 1024]
    with pytest.raises(PathpruneError, match="prefix length L_prefix never varies.*--fix c"):
        fit(pts)
    law = fit(pts, fixed={"c": TRUE.c})
    assert (law.a, law.b, law.d) == pytest.approx((TRUE.a, TRUE.b, TRUE.d), rel=1e-9)
    assert law.fixed == ["c"]


def test_fit_explains_collinear_inputs():
    pts = [LawPoint(C * UNIT, 1024 * C / 100, T, 0.2 + 0.01 * i)
           for i, (C, T) in enumerate([(100, 8000), (200, 9000), (400, 7000), (800, 12000), (300, 9500)])]
    with pytest.raises(PathpruneError, match="collinear"):
        fit(pts)


def test_fit_rejects_bad_points():
    with pytest.raises(PathpruneError, match="gamma"):
        fit([(1e5, 1024, 8000, 1.5)] * 4)
    with pytest.raises(PathpruneError, match="budget"):
        fit([(-1, 1024, 8000, 0.5)] * 4)


def test_envelope_points_pick_the_peak():
    recs = [{"budget_tokens": 1e5, "prefix_tokens": 512, "task_tokens": 4000, "gamma": g, "accuracy": a}
            for g, a in ((1 / 2, 0.5), (1 / 4, 0.7), (1 / 8, 0.7), (1 / 16, 0.6))]
    (pt,) = envelope_points(recs)
    assert pt.gamma == pytest.approx(math.sqrt(1 / 4 * 1 / 8))


# ------------------------------------------------------------------------------------------- files


def test_save_load_round_trip(tmp_path):
    law = fit(synthetic(noise=0.05), source="synthetic")
    path = law.save(tmp_path / "law.json")
    back = LawConstants.load(path)
    assert back == law
    assert json.loads(path.read_text())["unit_tokens"] == 1024
    assert not list(tmp_path.glob("*.tmp"))


def write_points(path, pts):
    path.write_text("".join(json.dumps(point_record(p, model="synthetic")) + "\n" for p in pts))
    return path


def test_fit_from_runs(tmp_path):
    pts = synthetic()
    for i, chunk in enumerate((pts[:12], pts[12:24])):
        (tmp_path / "sweep" / f"run{i}").mkdir(parents=True)
        write_points(tmp_path / "sweep" / f"run{i}" / "law_points.jsonl", chunk)
    extra = write_points(tmp_path / "more.jsonl", pts[24:])
    law = fit_from_runs([tmp_path / "sweep", tmp_path / "sweep" / "run0", extra])  # run0 counted once
    assert law.n_points == len(pts) and law.b == pytest.approx(TRUE.b)


def test_points_accept_gamma_inv(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('# comment\n{"budget_tokens": 143360, "prefix_tokens": 512, "task_tokens": 8650, "gamma_inv": 4}\n\n')
    (pt,) = load_points(f)
    assert pt.gamma == 0.25 and pt.origin.endswith("p.jsonl:2")


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_recommend(capsys):
    assert main(["law", "recommend", "--budget", "158k", "--prefix", "2048", "--task-length", "8650",
                 "--paths", "64"]) == 0
    out = capsys.readouterr().out
    assert "9.63" in out and "0.1039" in out
    assert any("keep k of N = 64" in line and line.rstrip(" │").endswith("7") for line in out.splitlines())


def test_cli_recommend_clipped(capsys):
    assert main(["law", "recommend", "--budget", "10k", "--prefix", "2048", "--task-length", "30000"]) == 0
    out = capsys.readouterr().out
    assert "no pruning" in out and "C < L_task" in out


def test_cli_table(capsys):
    assert main(["law", "table", "--task-length", "8650", "--prefixes", "512,2560",
                 "--budgets", "140k,300k"]) == 0
    out = capsys.readouterr().out
    assert all(v in out for v in ("5.23", "7.42", "9.95", "14.13"))


def test_cli_fit_and_use(tmp_path, capsys):
    pts_file = write_points(tmp_path / "points.jsonl", synthetic(noise=0.1, seed=2))
    out = tmp_path / "law.json"
    assert main(["law", "fit", str(pts_file), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "R²" in text and "residuals" in text and f"wrote {out}" in text
    law = LawConstants.load(out)
    assert law.n_points == 36 and law.r2 is not None
    assert main(["law", "recommend", "--budget", "200k", "--prefix", "1024", "--task-length", "9000",
                 "--constants", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{gamma_inverse(200 * UNIT, 1024, 9000, law):.2f}" in text and "law.json" in text


def test_cli_fit_fix(tmp_path, capsys):
    pts_file = write_points(tmp_path / "points.jsonl", [p for p in synthetic() if p.prefix_tokens == 2048])
    assert main(["law", "fit", str(pts_file)]) == 2
    assert "--fix c" in capsys.readouterr().err
    assert main(["law", "fit", str(pts_file), "--fix", "c=0.31"]) == 0
    assert "(fixed)" in capsys.readouterr().out


BAD_FILES = {
    "not json": "{nope",
    "a list": "[1, 2]",
    "no d": '{"a": 1, "b": 1, "c": 1}',
    "string b": '{"a": 1, "b": "x", "c": 1, "d": 1}',
    "negative a": '{"a": -1, "b": 1, "c": 1, "d": 1}',
    "other unit": '{"a": 1, "b": 1, "c": 1, "d": 1, "unit_tokens": 1000}',
}


@pytest.mark.parametrize("content", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_constants_file(tmp_path, capsys, content):
    f = tmp_path / "law.json"
    f.write_text(content)
    assert main(["law", "recommend", "--budget", "200k", "--prefix", "1k", "--task-length", "9000",
                 "--constants", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and str(f.name) in err


BAD_ARGS = [
    ["law", "recommend", "--budget", "lots", "--prefix", "1k", "--task-length", "9000"],
    ["law", "recommend", "--budget", "200k", "--prefix", "-3", "--task-length", "9000"],
    ["law", "recommend", "--budget", "200k", "--prefix", "1k", "--task-length", "9000", "--paths", "0"],
    ["law", "recommend", "--budget", "200k", "--prefix", "1k", "--task-length", "9000", "--constants", "/nope.json"],
    ["law", "fit", "/no/such/dir"],
    ["law", "fit", "POINTS", "--fix", "e=1"],
    ["law", "fit", "POINTS", "--fix", "b=x"],
    ["law", "fit", "EMPTYDIR"],
    ["law", "fit", "BADLINE"],
]


@pytest.mark.parametrize("args", BAD_ARGS, ids=lambda a: " ".join(a[1:4]))
def test_bad_args_one_line(tmp_path, capsys, args):
    write_points(tmp_path / "points.jsonl", synthetic())
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.jsonl").write_text('{"budget_tokens": 1, "prefix_tokens": 1, "task_tokens": 1}\n')
    subst = {"POINTS": str(tmp_path / "points.jsonl"), "EMPTYDIR": str(tmp_path / "empty"),
             "BADLINE": str(tmp_path / "bad.jsonl")}
    assert main([subst.get(a, a) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err


def test_cli_help(capsys):
    for cmd in (["law"], ["law", "recommend"], ["law", "fit"], ["law", "table"]):
        assert main([*cmd, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out
