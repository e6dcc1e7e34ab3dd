"""TensorBoard event files of a run: ``<run folder>/tensorboard/<run id>/``.

One event folder per (repeat, fold) run, so ``tensorboard --logdir <run folder>/tensorboard``
shows the runs side by side. Written per epoch: ``train_loss`` and, per domain ``d``,
``val_ua/d``, ``val_wa/d``, ``val_loss/d`` (step = epoch). At the end of ``serkit run``:
``test_ua/d``, ``test_wa/d``, ``test_macro_f1/d``, ``test_loss/d`` (step = the selected
epoch), the resolved recipe as text, and the flattened recipe as TensorBoard HParams with
those test metrics.

Enabled by the recipe's ``logging.tensorboard`` (``auto``: when the ``tensorboard``
package is installed, the ``serkit[tensorboard]`` extra). torch and tensorboard are
imported only when a run starts.
"""

from __future__ import annotations

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

__all__ = ["TensorBoardLogger"]


class TensorBoardLogger:
    """Writes a run's metrics as TensorBoard event files (see the module docstring).

    Args:
        run_dir: the run folder; events go to ``run_dir/tensorboard/<run id>/``.
        recipe: the resolved recipe mapping (logged as hyper-parameters and text).
    """

    name: ClassVar[str] = "tensorboard"

    def __init__(self, run_dir: str | Path, recipe: dict[str, Any]) -> None:
        self.root = Path(run_dir) / "tensorboard"
        self.recipe = recipe
        self.hparams = flatten_params(recipe)
        self._writers: dict[str, Any] = {}

    @classmethod
    def create(cls, run_dir: str, recipe: dict[str, Any]) -> TensorBoardLogger | None:
        """A logger when ``logging.tensorboard`` enables it, else None.

        Raises:
            SerkitError: ``logging.tensorboard: true`` and tensorboard is not installed.
        """
        setting = logging_settings(recipe)["tensorboard"]
        if setting is False:
            return None
        if not installed("tensorboard"):
            if setting is True:
                raise missing_extra("tensorboard", "tensorboard", "tensorboard")
            return None
        return cls(run_dir, recipe)

    def writer(self, rid: str) -> Any:
        """The (cached) ``SummaryWriter`` of run ``rid``."""
        if rid not in self._writers:
            import yaml
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=str(self.root / rid))
            text = yaml.safe_dump(self.recipe, sort_keys=False, allow_unicode=True)
            writer.add_text("recipe", "```\n" + text + "```", 0)
            self._writers[rid] = writer
        return self._writers[rid]

    def on_epoch_end(self, repeat: int, fold: int, epoch: int, metrics: dict[str, float]) -> None:
        """One scalar per metric of the epoch (``epoch`` itself is the step)."""
        writer = self.writer(run_id(repeat, fold))
        for key, value in metrics.items():
            if key != "epoch":
                writer.add_scalar(key, float(value), epoch)
        writer.flush()

    def on_run_end(self, results: dict[str, Any]) -> None:
        """Test metrics and HParams of every run in ``results["runs"]``; closes the writers."""
        from torch.utils.tensorboard.summary import hparams

        try:
            for run in results.get("runs", []):
                writer = self.writer(str(run["id"]))
                step = int(run.get("best_epoch") or 0)
                metrics = final_metrics(run)
                for key, value in metrics.items():
                    writer.add_scalar(key, value, step)
                params = {**self.hparams, "run.repeat": int(run["repeat"]), "run.fold": int(run["fold"])}
                params["run.seed"] = int(run.get("seed", 0))
                experiment, start, end = hparams(params, metrics)
                for summary in (experiment, start, end):
                    writer.file_writer.add_summary(summary)
                writer.flush()
        finally:
            self.close()

    def close(self) -> None:
        """Flush and close every writer."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
