"""MLflow tracking of a run: one parent MLflow run per ``serkit run``, one child per (repeat, fold).

The parent run (named after the run folder, tag ``serkit.run_dir``) holds the flattened
recipe as parameters, the mean and std over runs of each domain's test UA / WA / macro-F1
(``test_ua/<domain>``, ``test_ua_std/<domain>``...) and ``results.json`` / ``report.md``
as artifacts. Each child run (tag ``serkit.run_id``, e.g. ``r0-f1``) holds the per-epoch
``train_loss``, ``val_ua/<d>``, ``val_wa/<d>``, ``val_loss/<d>`` (step = epoch) and its
test metrics (step = the selected epoch).

Enabled by the recipe's ``logging.mlflow``: ``auto`` logs when the ``mlflow`` package is
installed (the ``serkit[mlflow]`` extra) and a tracking URI is set (``MLFLOW_TRACKING_URI``
or ``logging.mlflow_tracking_uri``); ``true`` always logs. mlflow is imported only then.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, ClassVar

from serkit.builtin.loggers.common import (
    final_metrics,
    flatten_params,
    installed,
    logging_settings,
    missing_extra,
    run_id,
)
from serkit.errors import SerkitError

__all__ = ["MlflowLogger"]

#: MLflow's limits: parameters per ``log_batch`` call and characters per parameter value.
MAX_PARAMS_PER_BATCH = 100
MAX_PARAM_CHARS = 6000


class MlflowLogger:
    """Logs a run to MLflow (see the module docstring).

    Args:
        client: an ``mlflow.tracking.MlflowClient``.
        experiment_id: the MLflow experiment of the runs.
        run_dir: the serkit run folder.
        recipe: the resolved recipe mapping.
    """

    name: ClassVar[str] = "mlflow"

    def __init__(self, client: Any, experiment_id: str, run_dir: str | Path, recipe: dict[str, Any]) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.run_dir = Path(run_dir)
        self.recipe = recipe
        self.parent_id: str = client.create_run(
            experiment_id,
            run_name=self.run_dir.name,
            tags={"serkit.run_dir": str(self.run_dir.resolve()), "serkit.recipe": str(recipe.get("name", ""))},
        ).info.run_id
        self._log_params(self.parent_id, flatten_params(recipe))
        self._children: dict[str, str] = {}

    @classmethod
    def create(cls, run_dir: str, recipe: dict[str, Any]) -> MlflowLogger | None:
        """A logger when ``logging.mlflow`` enables it, else None.

        Raises:
            SerkitError: ``logging.mlflow: true`` without mlflow installed, or the tracking
                server / store refused to start a run (the message names the URI).
        """
        settings = logging_settings(recipe)
        setting = settings["mlflow"]
        uri = settings["mlflow_tracking_uri"] or os.environ.get("MLFLOW_TRACKING_URI") or None
        if setting is False:
            return None
        if not installed("mlflow"):
            if setting is True:
                raise missing_extra("mlflow", "mlflow", "mlflow")
            return None
        if setting == "auto" and uri is None:
            return None
        from mlflow.tracking import MlflowClient

        experiment = settings["mlflow_experiment"] or str(recipe.get("name") or "serkit")
        try:
            client = MlflowClient(tracking_uri=uri)
            found = client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
            return cls(client, experiment_id, run_dir, recipe)
        except Exception as err:  # mlflow raises its own exception types
            where = uri or "MLflow's default tracking URI"
            raise SerkitError(
                f"recipe logging.mlflow: cannot start an MLflow run at {where} (experiment {experiment!r}): "
                f"{type(err).__name__}: {err}"
            ) from err

    def _log_params(self, mlflow_run: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(mlflow_run, params=items[i : i + MAX_PARAMS_PER_BATCH])

    def _log_metrics(self, mlflow_run: str, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        items = [Metric(k, float(v), stamp, step) for k, v in metrics.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(mlflow_run, metrics=items[i : i + 1000])

    def child(self, rid: str) -> str:
        """The MLflow run id of serkit run ``rid`` (created on first use)."""
        if rid not in self._children:
            created = self.client.create_run(
                self.experiment_id,
                run_name=rid,
                tags={"mlflow.parentRunId": self.parent_id, "serkit.run_id": rid},
            )
            self._children[rid] = created.info.run_id
        return self._children[rid]

    def on_epoch_end(self, repeat: int, fold: int, epoch: int, metrics: dict[str, float]) -> None:
        """The epoch's metrics in the child run of ``(repeat, fold)``, step = epoch."""
        values = {k: float(v) for k, v in metrics.items() if k != "epoch"}
        self._log_metrics(self.child(run_id(repeat, fold)), values, epoch)

    def on_run_end(self, results: dict[str, Any]) -> None:
        """Test metrics per child and their mean/std in the parent; artifacts; runs finished."""
        for run in results.get("runs", []):
            rid = self.child(str(run["id"]))
            self._log_params(rid, {"repeat": run["repeat"], "fold": run["fold"], "seed": run.get("seed", "")})
            self._log_metrics(rid, final_metrics(run), int(run.get("best_epoch") or 0))
        summary: dict[str, float] = {}
        for domain, m in results.get("domains", {}).items():
            for name in ("ua", "wa", "macro_f1"):
                stat = m.get(name) or {}
                if isinstance(stat.get("mean"), (int, float)) and math.isfinite(stat["mean"]):
                    summary[f"test_{name}/{domain}"] = float(stat["mean"])
                    summary[f"test_{name}_std/{domain}"] = float(stat.get("std", 0.0))
        self._log_metrics(self.parent_id, summary, 0)
        for name in ("results.json", "report.md", "recipe.yaml"):
            path = self.run_dir / name
            if path.is_file():
                self.client.log_artifact(self.parent_id, str(path))
        for rid in self._children.values():
            self.client.set_terminated(rid, "FINISHED")
        self.client.set_terminated(self.parent_id, "FINISHED")

    def close(self) -> None:
        """Mark the MLflow runs of an unfinished serkit run as failed."""
        for rid in [*self._children.values(), self.parent_id]:
            self.client.set_terminated(rid, "FAILED")
