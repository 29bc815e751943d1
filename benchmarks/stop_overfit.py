"""Can STOP's trainer memorise a few labelled prefixes of a real model? (issue #25's first question)

    python benchmarks/stop_overfit.py --out docs/stop-overfit.json
    python benchmarks/stop_overfit.py --recipes all      # also the other learning rates and warm-ups (≈ 12 min more)

Takes distinct prefixes of ``--model``'s own paths on validation word problems (two per problem, cut at
``--prefix-tokens``; identical prefixes cannot carry different labels, so they are never paired), labels one of
each pair 1 and the other 0 (a pure memorisation target: the constant predictor's loss is ln 2), and trains STOP
on them under each recipe, training = validation. Prints each recipe's training loss as a share of ln 2 per
epoch, the final share and the (within-problem) AUROC of the kept epoch, and the scale of the hidden state the
head reads. About 12 minutes on 2 cores for the defaults.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import torch  # noqa: E402

from pathprune.models import load_model  # noqa: E402
from pathprune.stop import StopConfig  # noqa: E402
from pathprune.stop.overfit import paired_prefixes  # noqa: E402
from pathprune.stop.train import train_stop  # noqa: E402
from pathprune.stop.scorer_training import TrainConfig  # noqa: E402
from pathprune.tasks.reasoner import suite  # noqa: E402

RECIPES = {
    "paper: lr 2e-3, 10 epochs, batch 32": TrainConfig(epochs=10, lr=2e-3, batch_size=32),
    "lr 1e-3, 30 epochs, batch 16, clip 1": TrainConfig(epochs=1, min_steps=120, lr=1e-3, batch_size=16,
                                                         max_grad_norm=1.0),  # = tests/test_stop_learns.py
}
MORE = {  # docs/smollm2.md's "what else was tried" (--recipes all)
    "lr 2e-3, batch 16, no clipping": TrainConfig(epochs=1, min_steps=120, lr=2e-3, batch_size=16),
    "lr 1e-3, batch 16, no clipping": TrainConfig(epochs=1, min_steps=120, lr=1e-3, batch_size=16),
    "lr 2e-3, clip 1, 20 warm-up steps": TrainConfig(epochs=1, min_steps=120, lr=2e-3, batch_size=16,
                                                      max_grad_norm=1.0, warmup_steps=20),
    "lr 3e-3, clip 1, 20 warm-up steps": TrainConfig(epochs=1, min_steps=120, lr=3e-3, batch_size=16,
                                                      max_grad_norm=1.0, warmup_steps=20),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-reasoner")
    ap.add_argument("--prefixes", type=int, default=64)
    ap.add_argument("--prefix-tokens", type=int, default=48)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--recipes", default="main", help="main (the two above) or all (also docs' other rows)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model, tok = load_model(args.model)
    recs = paired_prefixes(model, tok, suite("validation", n_per_level=30, levels=(3, 4, 5)), args.prefixes,
                           args.prefix_tokens)
    result = {"model": args.model, "prefixes": len(recs), "prefix_tokens": args.prefix_tokens, "recipes": {}}
    for name, cfg in (RECIPES | MORE if args.recipes == "all" else RECIPES).items():
        model, tok = load_model(args.model)  # a fresh backbone per recipe (the adapter attaches to it)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            report = train_stop(model, tok, recs, recs, StopConfig(base_model=args.model), cfg, out)
        shares = [round(h["train_loss"] / math.log(2), 3) for h in report["history"]]
        best = report["best"]
        result["recipes"][name] = {"seconds": round(time.perf_counter() - t0), "loss_share_per_epoch": shares,
                                   "auroc": best["auroc"], "within_auroc": best["within_auroc"]}
        print(f"{name}: loss / ln 2 per epoch {shares}; kept epoch AUROC {best['auroc']:.3f} "
              f"(within-problem {best['within_auroc']:.3f})", flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
