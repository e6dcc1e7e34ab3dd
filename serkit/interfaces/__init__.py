"""Abstract component interfaces, one module per kind."""

from serkit.interfaces.base import Component, ComponentParams
from serkit.interfaces.callback import TrainCallback, TrainLoop
from serkit.interfaces.dataset import Dataset
from serkit.interfaces.encoder import Encoder
from serkit.interfaces.extractor import Extractor
from serkit.interfaces.fusion import Fusion, FusionOutput
from serkit.interfaces.head import Head
from serkit.interfaces.loss import Loss
from serkit.interfaces.optimizer import Optimizer

__all__ = [
    "Component",
    "ComponentParams",
    "Dataset",
    "Encoder",
    "Extractor",
    "Fusion",
    "FusionOutput",
    "Head",
    "Loss",
    "Optimizer",
    "TrainCallback",
    "TrainLoop",
]

#: Every component kind, in the order ``serkit plugins`` lists them.
KINDS: tuple[str, ...] = ("dataset", "extractor", "encoder", "fusion", "head", "loss", "optimizer", "callback")
