"""Built-in experiment loggers (TensorBoard, MLflow) on the run-callback hooks of a tiny run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from serkit.errors import SerkitError
from serkit.testing.cli import run_cli

RECIPE = """\
name: logged
seed: 0
protocol: {type: speaker, k: 3, folds: [0, 1]}
domains:
  xa: {dataset: {type: synthetic, languages: [xa], speakers: 6, per_class: 3, emotions: [angry, neutral, sad]}}
  xb: {dataset: {type: synthetic, languages: [xb], speakers: 6, per_class: 3, emotions: [angry, happy, sad]}}
features:
  mfcc:
    extractor: {type: mfcc, n_mfcc: 13, hop_ms: 20}
    encoder: {type: mean_pool, stats: true}
heads:
  default: {type: mlp, hidden: [16], activations: [relu], dropout: 0.2}
train: {epochs: 3, batch_size: 8}
logging: {mlflow_experiment: serkit-test}
"""


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> tuple[Path, str]:
    """A finished run with TensorBoard (auto) and MLflow (auto, file store in a temp folder).

    ``serkit run`` and every MLflow read run in subprocesses: importing mlflow installs
    ``importlib_metadata``'s distribution finder, after which this process's plugin loading
    would see backport entry points (see the helper's report).
    """
    folder = tmp_path_factory.mktemp("loggers")
    recipe = folder / "logged.yaml"
    recipe.write_text(RECIPE)
    uri = (folder / "mlruns").as_uri()
    env = {**os.environ, **_mlflow_env(uri), "SERKIT_CACHE": str(session_cache), "SERKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    cmd = [sys.executable, "-m", "serkit", "run", str(recipe), "--out", str(folder / "run"), "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return folder / "run", uri


def _mlflow_env(uri: str) -> dict[str, str]:
    # mlflow-skinny has no database backend; its file store needs this opt-in
    return {"MLFLOW_TRACKING_URI": uri, "MLFLOW_ALLOW_FILE_STORE": "true"}


MLFLOW_DUMP = """
import json, sys
from mlflow.tracking import MlflowClient
client = MlflowClient()
exp = client.get_experiment_by_name(sys.argv[1])
out = []
for r in client.search_runs([exp.experiment_id]):
    history = {k: [[m.step, m.value] for m in client.get_metric_history(r.info.run_id, k)] for k in r.data.metrics}
    artifacts = [a.path for a in client.list_artifacts(r.info.run_id)]
    out.append({"id": r.info.run_id, "status": r.info.status, "tags": r.data.tags, "params": r.data.params,
                "metrics": r.data.metrics, "history": history, "artifacts": artifacts})
print(json.dumps(out))
"""


def _mlflow_runs(uri: str, experiment: str) -> list[dict[str, Any]]:
    env = {**os.environ, **_mlflow_env(uri)}
    proc = subprocess.run(
        [sys.executable, "-c", MLFLOW_DUMP, experiment], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _history(run: Path, rid: str) -> list[dict[str, float]]:
    return json.loads((run / "runs" / f"{rid}.json").read_text())["history"]


def test_tensorboard_events_equal_the_run_history(logged: tuple[Path, str]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _ = logged
    results = json.loads((run / "results.json").read_text())
    assert sorted(p.name for p in (run / "tensorboard").iterdir()) == ["r0-f0", "r0-f1"]
    for entry in results["runs"]:
        acc = EventAccumulator(str(run / "tensorboard" / entry["id"]))
        acc.Reload()
        history = _history(run, entry["id"])
        keys = [k for k in history[0] if k != "epoch"]
        assert sorted(keys) == sorted(
            ["train_loss", *(f"val_{m}/{d}" for m in ("ua", "wa", "loss") for d in ("xa", "xb"))]
        )
        for key in keys:
            events = acc.Scalars(key)
            assert [e.step for e in events] == [row["epoch"] for row in history]
            assert [e.value for e in events] == pytest.approx([row[key] for row in history], rel=1e-6)
        # final test metrics at the selected epoch, equal to results.json
        for d in ("xa", "xb"):
            for m in ("ua", "wa", "macro_f1"):
                (event,) = acc.Scalars(f"test_{m}/{d}")
                assert event.step == entry["best_epoch"]
                assert event.value == pytest.approx(entry["test"][d][m], rel=1e-6)
        assert "recipe/text_summary" in acc.Tags()["tensors"]  # the resolved recipe as text


def test_tensorboard_hparams_hold_the_recipe(logged: tuple[Path, str]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run, _ = logged
    acc = EventAccumulator(str(run / "tensorboard" / "r0-f1"))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["train.epochs"].number_value == 3
    assert hp["features.mfcc.encoder.type"].string_value == "mean_pool"
    assert hp["run.fold"].number_value == 1
    assert hp["logging.mlflow_experiment"].string_value == "serkit-test"


def test_mlflow_runs_hold_params_epoch_and_test_metrics(logged: tuple[Path, str]) -> None:
    run, uri = logged
    results = json.loads((run / "results.json").read_text())
    found = _mlflow_runs(uri, "serkit-test")
    parents = [r for r in found if "mlflow.parentRunId" not in r["tags"]]
    children = {r["tags"]["serkit.run_id"]: r for r in found if "mlflow.parentRunId" in r["tags"]}
    (parent,) = parents
    assert parent["status"] == "FINISHED"
    assert parent["tags"]["serkit.run_dir"] == str(run.resolve())
    assert parent["params"]["train.epochs"] == "3"
    assert parent["params"]["protocol.folds"] == "[0, 1]"
    for d in ("xa", "xb"):
        assert parent["metrics"][f"test_ua/{d}"] == pytest.approx(results["domains"][d]["ua"]["mean"])
        assert parent["metrics"][f"test_wa_std/{d}"] == pytest.approx(results["domains"][d]["wa"]["std"])
    assert {"results.json", "report.md", "recipe.yaml"} <= set(parent["artifacts"])
    assert sorted(children) == ["r0-f0", "r0-f1"]
    for entry in results["runs"]:
        child = children[entry["id"]]
        assert child["status"] == "FINISHED"
        assert child["tags"]["mlflow.parentRunId"] == parent["id"]
        history = _history(run, entry["id"])
        for key in ("train_loss", "val_ua/xa", "val_wa/xa", "val_loss/xb"):
            steps, values = zip(*child["history"][key], strict=True)
            assert list(steps) == [row["epoch"] for row in history]
            assert list(values) == pytest.approx([row[key] for row in history])
        assert child["metrics"]["test_ua/xb"] == pytest.approx(entry["test"]["xb"]["ua"])
        assert child["history"]["test_ua/xb"][0][0] == entry["best_epoch"]
        assert child["params"]["fold"] == str(entry["fold"])


def test_settings_switch_the_loggers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from serkit.builtin.loggers import mlflow as mlflow_logger
    from serkit.builtin.loggers import tensorboard as tb_logger

    recipe: dict[str, Any] = {"name": "x", "logging": {"tensorboard": False, "mlflow": "auto"}}
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tb_logger.TensorBoardLogger.create(str(tmp_path), recipe) is None
    assert mlflow_logger.MlflowLogger.create(str(tmp_path), recipe) is None  # auto without a tracking URI
    assert tb_logger.TensorBoardLogger.create(str(tmp_path), {"name": "x"}) is not None  # auto, installed

    monkeypatch.setattr(tb_logger, "installed", lambda module: False)
    monkeypatch.setattr(mlflow_logger, "installed", lambda module: False)
    assert tb_logger.TensorBoardLogger.create(str(tmp_path), {"logging": {"tensorboard": "auto"}}) is None
    with pytest.raises(SerkitError) as err:
        tb_logger.TensorBoardLogger.create(str(tmp_path), {"logging": {"tensorboard": True}})
    assert str(err.value) == (
        "recipe logging.tensorboard: true, but the tensorboard package is not installed; "
        "pip install 'serkit[tensorboard]' (or set logging.tensorboard: auto)"
    )
    with pytest.raises(SerkitError) as err:
        mlflow_logger.MlflowLogger.create(str(tmp_path), {"logging": {"mlflow": True}})
    assert str(err.value) == (
        "recipe logging.mlflow: true, but the mlflow package is not installed; "
        "pip install 'serkit[mlflow]' (or set logging.mlflow: auto)"
    )


def test_required_logger_missing_stops_the_run_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from serkit.builtin.loggers import tensorboard as tb_logger

    monkeypatch.setattr(tb_logger, "installed", lambda module: False)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "run"
    code = run_cli(["run", str(recipe), "--out", str(out), "--quiet", "--set", "logging.tensorboard=true"])
    assert code == 2
    assert "pip install 'serkit[tensorboard]'" in capsys.readouterr().err
    assert not (out / "runs").exists() and not (out / "checkpoints").exists()


def test_a_failing_logger_is_dropped_with_a_warning_and_training_goes_on() -> None:
    from serkit.builtin import plugin

    calls: list[str] = []

    class Broken:
        name = "broken"

        def on_epoch_end(self, **_: Any) -> None:
            raise ConnectionError("server went away")

        def close(self) -> None:
            calls.append("closed")

    class Fine:
        name = "fine"

        def on_epoch_end(self, **kw: Any) -> None:
            calls.append(f"epoch {kw['epoch']}")

    plugin._ACTIVE["/r"] = [Broken(), Fine()]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plugin.serkit_on_epoch_end(run_dir="/r", repeat=0, fold=0, epoch=1, metrics={"train_loss": 1.0})
            plugin.serkit_on_epoch_end(run_dir="/r", repeat=0, fold=0, epoch=2, metrics={"train_loss": 0.5})
        assert [str(w.message) for w in caught] == [
            "broken logging stopped for /r: ConnectionError: server went away"
        ]
        assert calls == ["closed", "epoch 1", "epoch 2"]
    finally:
        plugin._ACTIVE.pop("/r", None)
