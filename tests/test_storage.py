"""Storage: the one atomic-write helper, and configs validated when built and when read
(StopConfig, JudgeConfig, TrainConfig; the training record beside a checkpoint's config)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from pathprune.errors import PathpruneError
from pathprune.io.atomic import atomic_dir, write_bytes_atomic, write_json_atomic, write_text_atomic
from pathprune.signals.judges import JudgeConfig, judge_train_config
from pathprune.stop.config import StopConfig, model_name, read_training
from pathprune.stop.scorer_training import TrainConfig

STOP_DIR = Path(__file__).resolve().parent.parent / "src" / "pathprune" / "stop" / "checkpoints"
JUDGE_DIR = STOP_DIR.parent.parent / "signals" / "judges" / "checkpoints" / "testbed"
SHIPPED = [STOP_DIR / "testbed", STOP_DIR / "testbed-lp", JUDGE_DIR]


# -- atomic writes -------------------------------------------------------------------------------------

def test_atomic_file_writes_replace_whole_and_leave_nothing_behind(tmp_path):
    f = tmp_path / "a.json"
    write_json_atomic(f, {"x": 1, "p": tmp_path})  # values JSON cannot hold are written as str
    assert json.loads(f.read_text()) == {"x": 1, "p": str(tmp_path)} and f.read_text().endswith("}\n")
    write_text_atomic(f, "two")
    assert f.read_text() == "two"
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert f.stat().st_mode == plain.stat().st_mode  # permissions as any new file's, not private
    plain.unlink()
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\xff")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    with pytest.raises(TypeError):  # a failed write keeps the old content and cleans its temporary
        write_bytes_atomic(f, "not bytes")
    assert f.read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]


def test_atomic_dir_appears_whole_or_not_at_all(tmp_path):
    out = tmp_path / "ckpt"
    with atomic_dir(out) as tmp:
        (tmp / "one").write_text("1")
        assert not out.exists()  # nothing visible until the block ends
    assert [p.name for p in out.iterdir()] == ["one"]
    with atomic_dir(out) as tmp:  # replacing an existing directory replaces it whole
        (tmp / "two").write_text("2")
    assert [p.name for p in out.iterdir()] == ["two"]
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "three").write_text("3")
            raise RuntimeError("killed half-way")
    assert [p.name for p in out.iterdir()] == ["two"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_atomic_dir_clears_temporaries_of_dead_writers_only(tmp_path):
    done = subprocess.Popen(["true"])
    done.wait()
    dead = tmp_path / f".ckpt.{done.pid}.tmp"
    live = tmp_path / f".ckpt.{os.getppid()}.tmp"  # a running process's write in progress
    dead.mkdir()
    live.mkdir()
    with atomic_dir(tmp_path / "ckpt") as tmp:
        (tmp / "f").write_text("x")
    assert not dead.exists() and live.exists()


# -- TrainConfig -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("lr", 0.0, "lr must be a number > 0"),
    ("lr", float("nan"), "lr must be a number > 0"),
    ("epochs", 0, "epochs must be an integer >= 1"),
    ("epochs", 2.5, "epochs must be an integer >= 1"),
    ("batch_size", 0, "batch_size must be an integer >= 1"),
    ("batch_size", True, "batch_size must be an integer >= 1"),
    ("min_steps", -1, "min_steps must be an integer >= 0"),
    ("warmup_steps", 1.5, "warmup_steps must be an integer >= 0"),
    ("weight_decay", -0.1, "weight_decay must be a number >= 0"),
    ("rank_weight", -1.0, "rank_weight must be a number >= 0"),
    ("max_grad_norm", 0.0, "max_grad_norm must be a number > 0"),
    ("seed", "0", "seed must be an integer"),
    ("loss", "hinge", "loss must be one of bce, bce[+]listwise"),
    ("select", "auroc", "select must be one of mse, within_auroc"),
])
def test_train_config_is_validated_when_built(field, value, message):
    with pytest.raises(PathpruneError, match=message) as err:
        TrainConfig(**{field: value})
    assert "\n" not in str(err.value) and err.value.parameter == field


def test_the_judge_trains_with_the_same_config_and_its_own_defaults():
    cfg = judge_train_config(epochs=3)
    assert type(cfg) is TrainConfig and (cfg.epochs, cfg.lr, cfg.weight_decay) == (3, 1e-3, 0.0)
    with pytest.raises(PathpruneError, match="lr must be a number > 0"):
        judge_train_config(lr=-1.0)


# -- StopConfig / JudgeConfig ----------------------------------------------------------------------------

def test_stop_config_is_validated_when_built():
    for bad, message in (({"alpha": 0}, "alpha must be an integer >= 1"),
                         ({"n_stop": 1.5}, "n_stop must be an integer >= 1"),
                         ({"head_features": ["mean_logprob"], "feature_mean": [0.0, 1.0]},
                          "feature_mean needs one value per head feature"),
                         ({"head_features": ["mean_logprob"], "feature_std": [0.0]}, "feature_std must be > 0")):
        with pytest.raises(PathpruneError, match=message):
            StopConfig(**bad)
    # the base model is recorded by name, never by a machine path
    assert StopConfig(base_model="/somewhere/models/qwen-1.5b").base_model == "qwen-1.5b"
    assert StopConfig(base_model="testbed").base_model == "testbed"
    from pathprune.models.registry import TESTBED_DIR

    assert model_name(TESTBED_DIR) == "testbed" and model_name("~/gguf/m.gguf") == "m.gguf"
    assert JudgeConfig(base_model="/a/b/judge-base").base_model == "judge-base"
    with pytest.raises(PathpruneError, match="max_length must be an integer >= 1"):
        JudgeConfig(max_length=0)


def test_stop_config_read_checks_version_and_keys():
    raw = StopConfig(n_stop=2, base_model="testbed").to_json()
    assert StopConfig.from_json(raw) == StopConfig(n_stop=2, base_model="testbed")
    for bad, message in (({**raw, "format_version": 2}, "format_version 2 is newer than this pathprune reads"),
                         ({k: v for k, v in raw.items() if k != "format_version"}, "format_version None is not"),
                         ({**raw, "n_stops": 4}, "x/stop_config.json: unknown key n_stops"),
                         ({**raw, "rank": 0}, "x/stop_config.json: rank must be an integer >= 1"),
                         ({**raw, "feature_std": ["a"]}, "x/stop_config.json: ")):
        with pytest.raises(PathpruneError, match=message) as err:
            StopConfig.from_json(bad, "x/stop_config.json")
        assert "\n" not in str(err.value)
    # a training record belongs in training.json beside the config, never in it
    with pytest.raises(PathpruneError, match="unknown keys history, metrics"):
        StopConfig.from_json({**raw, "metrics": {"epoch": 3}, "history": [{"epoch": 1}]}, "x/stop_config.json")


def test_shipped_checkpoints_keep_the_training_record_beside_the_config():
    for d in SHIPPED:
        name = "stop_config.json" if (d / "stop_config.json").is_file() else "judge_config.json"
        raw = json.loads((d / name).read_text())
        assert not {"metrics", "train", "history"} & set(raw) and raw["base_model"] == "testbed"
        training = read_training(d)
        assert training["best"]["epoch"] >= 1 and training["train_records"] > 0
        # (no machine path in any shipped file: test_hygiene checks every tracked file)
