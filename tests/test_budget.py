"""Equal-budget baselines and lost problems, against hand-computed cases; a real report shows them."""

import json
import random

import numpy as np
import pytest

from pathprune.engine.selection import majority
from pathprune.evaluation.budget import (SelfConsistency, _prefix_votes, equal_budget, pruned_subsets,
                                         unit_self_consistency, worst_problems)
from pathprune.evaluation.offline import Setting
from pathprune.evaluation.summary import ByProblem


def _path(i, tokens, answer, correct, s, t):
    return {"path_index": i, "tokens": tokens, "answer": answer, "correct": correct, "finished": True,
            "signals": {"s": {"10": [s, 0, 0]}, "t": {"10": [t, 0, 0]}}}


def _unit(uid, ref):
    return {"unit_id": uid, "problem_id": uid.split("@")[0], "reference": ref, "answer_kind": "testbed",
            "prompt_tokens": 3}


# A (ref 7): path 0 right, 1 and 2 answer 3.        s keeps path 1 (wrong), t keeps path 0 (right).
# B (ref 5): path 0 no answer, 1 right, 2 answers 4. s keeps path 1 (right), t keeps path 2 (wrong).
UNITS = [_unit("A@0", "7"), _unit("B@0", "5")]
PATHS = {"A@0": [_path(0, 10, "7", True, 0.2, 0.9), _path(1, 20, "3", False, 0.9, 0.1), _path(2, 30, "3", False, 0.5, 0.5)],
         "B@0": [_path(0, 30, None, False, 0.1, 0.1), _path(1, 30, "5", True, 0.8, 0.2), _path(2, 30, "4", False, 0.3, 0.7)]}


def test_self_consistency_curve_by_hand():
    # A: n=1 -> 1/3; n=2: {0,1} tie -> earliest path 0 "7" right, {0,2} right, {1,2} "3" -> 2/3; n=3 "3" wrong -> 0
    assert unit_self_consistency(UNITS[0], PATHS["A@0"]).tolist() == pytest.approx([1 / 3, 2 / 3, 0])
    # B: n=1: only path 1 -> 1/3; n=2: {0,1} "5", {0,2} "4", {1,2} tie -> path 1 "5" -> 2/3; n=3 tie -> "5" right
    assert unit_self_consistency(UNITS[1], PATHS["B@0"]).tolist() == pytest.approx([1 / 3, 2 / 3, 1])
    sc = SelfConsistency(UNITS, PATHS, n_boot=200)
    rows = sc.rows()
    assert [r["n"] for r in rows] == [1, 2, 3]
    assert [r["cons"] for r in rows] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert [r["tokens"] for r in rows] == pytest.approx([25, 50, 75])  # mean path tokens: A 20, B 30
    assert rows[2]["cons_ci"] == (0.0, 1.0)  # problems at 0 and 1: resamples give 0, 1/2 or 1
    assert rows[0]["cons_ci"] == pytest.approx((1 / 3, 1 / 3))  # both problems are 1/3


def test_sampled_subsets_approach_the_exact_curve_and_votes_match_the_engine():
    rng = random.Random(0)
    for _ in range(300):  # the incremental vote is the engine's majority over paths in index order
        codes = [rng.choice([-1, 0, 1, 2]) for _ in range(rng.randint(1, 9))]
        order = rng.sample(range(len(codes)), len(codes))
        for target in range(3):  # which answer is right: the vote itself must match, not only its correctness
            right = [c == target for c in range(3)]
            for n, got in enumerate(_prefix_votes(order, codes, right), 1):
                vote = majority([None if codes[i] < 0 else codes[i] for i in sorted(order[:n])])
                assert got == (vote == target)
    exact = unit_self_consistency(UNITS[0], PATHS["A@0"])
    sampled = unit_self_consistency(UNITS[0], PATHS["A@0"], draws=2, seed=1)  # C(3,1) = 3 > 2 subsets: sampled
    assert sampled[2] == exact[2] and not np.allclose(sampled, exact)
    assert unit_self_consistency(UNITS[0], PATHS["A@0"], draws=2, seed=1).tolist() == sampled.tolist()  # seeded
    assert unit_self_consistency(UNITS[0], PATHS["A@0"], draws=2000, seed=1) == pytest.approx(exact, abs=0.04)


def test_equal_token_comparison_and_lost_problems_by_hand():
    s, t = Setting("s", 10, 1), Setting("t", 10, 1)
    out = equal_budget(UNITS, PATHS, [Setting(None), s, t], n_boot=300)
    assert set(out["settings"]) == {s.label, t.label}
    vs = out["settings"][s.label]
    # s: A keeps path 1 (wrong) for 10+10+20 = 40 tokens, B keeps path 1 (right) for 10+10+30 = 50 -> cons 1/2, 45 tok.
    # n* = 45 / 25 = 1.8: self-consistency 0.2*(1/3) + 0.8*(2/3) = 0.6 on both problems -> gain -0.6 and +0.4
    assert (vs["cons"], vs["tokens"]) == pytest.approx((0.5, 45))
    assert (vs["sc_n"], vs["sc_tokens"], vs["sc_cons"]) == pytest.approx((1.8, 45, 0.6))
    assert vs["gain"] == pytest.approx(-0.1) and not vs["clamped"]
    lo, hi = vs["gain_ci"]
    assert -0.6 - 1e-9 <= lo < -0.1 < hi <= 0.4 + 1e-9
    # s loses A (path 0 was right, none kept); the unpruned votes (A wrong, B right) stand -> lost 1/2, no change
    assert (vs["lost"], vs["fixed"], vs["broken"]) == (0.5, 0.0, 0.0)
    # t: A keeps the right path 0 (vote fixed), B keeps path 2 "4" (lost, vote broken)
    vt = out["settings"][t.label]
    assert (vt["lost"], vt["fixed"], vt["broken"]) == (0.5, 0.5, 0.5)
    assert vt["tokens"] == pytest.approx((30 + 50) / 2) and vt["sc_n"] == pytest.approx(1.6)


def test_seeds_average_within_a_problem_before_problems():
    # problem A run twice (seed 1 = seed 0 with path 0 wrong): per problem, the mean over its seeds
    a1 = {**UNITS[0], "unit_id": "A@1"}
    paths = {**PATHS, "A@1": [{**PATHS["A@0"][0], "answer": "8", "correct": False}, *PATHS["A@0"][1:]]}
    by = ByProblem([UNITS[0], a1, UNITS[1]])
    assert by.mean([1.0, 0.0, 4.0]).tolist() == [0.5, 4.0]
    fails = equal_budget([UNITS[0], a1, UNITS[1]], paths, [Setting("s", 10, 1)], n_boot=50)["settings"]["s @10:1"]
    assert fails["lost"] == pytest.approx((0.5 + 0) / 2)  # A: lost on seed 0 only (seed 1 had no right path)
    sc = SelfConsistency([UNITS[0], a1, UNITS[1]], paths)
    assert sc.rows()[0]["cons"] == pytest.approx(((1 / 3 + 0) / 2 + 1 / 3) / 2)


def test_clamped_when_the_budget_is_beyond_the_paths():
    sc = SelfConsistency(UNITS, PATHS, n_boot=50)
    n_star, cons, clamped = sc.at_tokens(1000.0)
    assert n_star == 3 and clamped and cons.tolist() == pytest.approx([0, 1])
    n_star, cons, clamped = sc.at_tokens(50.0)
    assert n_star == 2 and not clamped and cons.tolist() == pytest.approx([2 / 3, 2 / 3])


def test_worst_problems_show_each_signals_ranking():
    worst = worst_problems(UNITS, PATHS, ["s", "t"], 10, 1)
    assert [w["unit_id"] for w in worst] == ["A@0", "B@0"]  # each lost by one signal; ties by unit id
    a = worst[0]
    assert a["lost_by"] == ["s"] and a["right"] == 1 and not a["vote_correct"]
    rs, rt = a["signals"]
    # s ranks A's paths 1 (0.9) > 2 (0.5) > 0 (0.2): the right path 0 is 3rd, the cut-off is 0.9
    assert (rs["best_right_rank"], rs["best_right_score"], rs["cutoff_score"], rs["kept_right"]) == (3, 0.2, 0.9, 0)
    assert (rt["best_right_rank"], rt["lost"], rt["vote_correct"]) == (1, False, True)


def test_pruned_subsets_by_hand():
    s = Setting("s", 10, 1)
    cons, tokens = pruned_subsets(UNITS, PATHS, s, n_paths=3, draws=3)
    assert cons.tolist() == [0.0, 1.0] and tokens.tolist() == [40.0, 50.0]  # all paths: the setting itself
    # 2 of 3 paths: A keeps a wrong path in every subset; B: {0,1} and {1,2} keep path 1 (right), {0,2} path 2,
    # and every B subset costs 10 + 30 = 40 tokens
    cons, tokens = pruned_subsets(UNITS, PATHS, s, n_paths=2, draws=400)
    assert cons[0] == 0.0 and tokens[1] == 40.0 and cons[1] == pytest.approx(2 / 3, abs=0.07)


def test_a_real_report_shows_the_equal_budget_comparison(tmp_path):
    from pathprune.cli import main

    out = tmp_path / "ev"
    assert main(["eval", "--out", str(out), "--levels", "6", "--per-level", "2", "--n", "6", "--prefix", "12",
                 "--keep", "2,3", "--signals", "random,mean_logprob", "--bootstrap", "100",
                 "--max-new-tokens", "120"]) == 0
    md = (out / "report.md").read_text()
    assert "## Pruning against self-consistency at equal tokens (L = 12)" in md
    assert "Δ cons vs self-consistency at equal tokens" in md and "lost %" in md
    assert "## Self-consistency on the same paths" in md and "![avg_vs_tokens](avg_vs_tokens.png)" in md
    summary = json.loads((out / "summary.json").read_text())
    curve = summary["self_consistency"]
    assert [r["n"] for r in curve] == list(range(1, 7))
    none = summary["rows"][0]
    assert curve[-1]["cons"] == pytest.approx(none["cons"])  # all N paths voted = no pruning
    assert curve[-1]["tokens"] == pytest.approx(none["tokens"])
    for row in summary["rows"][1:]:
        vs = row["vs_sc"]
        assert vs["cons"] == pytest.approx(row["cons"]) and vs["tokens"] == pytest.approx(row["tokens"])
        assert 1 <= vs["sc_n"] <= 6 and 0 <= vs["lost"] <= 1
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 3


def _run_dir(tmp_path):
    from pathprune.evaluation.runs import EvalConfig
    from pathprune.io.runlog import RunLog

    cfg = EvalConfig(model="hand", signals=["s", "t"], n=3, prefixes=[10], keeps=[1])
    log = RunLog(tmp_path / "run", {"eval": cfg.__dict__}, key="unit_id")
    for u in UNITS:
        log.append({**u, "seed": 0, "dataset": "hand", "seconds": {}}, [{"unit_id": u["unit_id"], **p}
                                                                        for p in PATHS[u["unit_id"]]])
    return tmp_path / "run"


def test_law_check_on_a_run_by_hand(tmp_path, capsys):
    from pathprune.cli import main
    from pathprune.evaluation.law import check_on_run

    run = _run_dir(tmp_path)
    # C = 45 at L = 10, L_task = 25, γ = 1/3: N' = 45 / (10 + 15/3) = 3 paths, k' = 1: the settings above
    res = check_on_run(run, 45, 10, 25, 1 / 3, n_boot=300, draws=3)
    assert (res["checkpoint"], res["n_paths"], res["keep"], res["path_tokens"]) == (10, 3, 1, 25)
    s, t = res["rows"]
    assert s["gain"] == pytest.approx(-0.1) and s["verdict"] == "ties"
    # t: A keeps its right path (30 tokens), B a wrong one (50): cons 1/2 at 40 tokens, n* = 1.6 -> 0.4/3 + 1.2/3
    assert (t["cons"], t["sc_n"], t["sc_cons"]) == pytest.approx((0.5, 1.6, 1.6 / 3))
    assert check_on_run(run, 1000, 12, 25, 1 / 3)["rows"] == []  # N' = 66 > the 3 launched paths
    # the paper's γ at these tiny sizes is ~0: k' = 1 of N' = floor(35 / 10) = 3, the same comparison
    assert main(["law", "recommend", "--budget", "35", "--prefix", "10", "--task-length", "25", "--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert "N' = 3 paths, keep k' = 1 at L = 10" in out and "-10.0" in out and "ties" in out
    assert main(["law", "recommend", "--budget", "35", "--prefix", "10", "--task-length", "25",
                 "--run", str(tmp_path)]) == 2
    assert "not an evaluation run directory" in capsys.readouterr().err


def test_outcome_auroc_and_the_prefix_ceiling_against_a_hand_count():
    """Two problems. A: four live paths at L = 2, prefixes (1,2) ×2 and (3,4) ×2, outcomes right/wrong and
    right/right; B: three live paths, one prefix, one ended before L (no score). Signal s scores A's paths
    0.9, 0.1, 0.5, 0.6: A has 3 right, 1 wrong (the wrong one scored 0.1, below all): AUROC 1.0. Ceiling on
    A: groups (1,2) share 0.5 for both its paths, (3,4) share 1.0: the wrong path (0.5) ties its right partner
    and is below the two others: (1 + 1 + 0.5) / 3 = 5/6. B: its two live paths share one prefix (ceiling 0.5)
    and s ranks the right one lower (AUROC 0)."""
    from pathprune.evaluation.outcomes import CEILING, outcome_auroc

    def path(ids, correct, score):
        return {"token_ids": ids, "correct": correct, "signals": {} if score is None else {"s": {"2": [score]}}}

    units = [{"unit_id": "A@0", "problem_id": "A"}, {"unit_id": "B@0", "problem_id": "B"}]
    paths = {"A@0": [path([1, 2, 5], True, 0.9), path([1, 2, 6], False, 0.1), path([3, 4, 7], True, 0.5),
                     path([3, 4, 8], True, 0.6)],
             "B@0": [path([5, 5, 1], True, 0.2), path([5, 5, 2], False, 0.7), path([9], True, None)]}
    rows = {r["signal"]: r for r in outcome_auroc(units, paths, ["s"], 2, n_boot=200)}
    assert rows["s"]["problems"] == 2 and rows["s"]["within_auroc"] == pytest.approx((1.0 + 0.0) / 2)
    assert rows[CEILING]["within_auroc"] == pytest.approx((5 / 6 + 0.5) / 2)
    assert rows["s"]["share_of_ceiling"] == pytest.approx((0.5 - 0.5) / ((5 / 6 + 0.5) / 2 - 0.5))
    lo, hi = rows["s"]["ci95"]
    assert lo <= rows["s"]["within_auroc"] <= hi and lo >= 0.0 and hi <= 1.0
    # a run without token ids has no ceiling (older run directories)
    for ps in paths.values():
        for p in ps:
            del p["token_ids"]
    assert [r["signal"] for r in outcome_auroc(units, paths, ["s"], 2, n_boot=50)] == ["s"]
