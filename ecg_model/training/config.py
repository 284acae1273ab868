"""Training configuration: a frozen dataclass, saved as ``config.json`` in each run."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..core.classes import CLASSES
from ..data.dataset import ALL_SPLIT, LODO_SPLITS, SPLITS

BALANCE = ("none", "sqrt", "balanced")
TRAIN_SPLITS = (*SPLITS, ALL_SPLIT, *LODO_SPLITS)
STRATEGIES = ("default", "mirrored", "multiworker")
VAL_BY = ("beat", "record")
#: The architectures ``training.models`` registers, named here so that a
#: configuration is checked (and the dashboard's form filled) without Keras;
#: ``tests/test_train.py`` holds the two lists equal.
MODEL_NAMES = ("ecgnet", "ecgnet_p4", "ecgnet_v1", "seed")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run.

    Attributes
    ----------
    model : str
        Registry name (``ecgnet`` default, ``ecgnet_p4`` its 4x4-patch form of
        the first 256-column runs, ``ecgnet_v1`` the first default, ``seed``
        the original report's network).
    split : str
        ``random`` or ``patient`` (used when the dataset is built for the run),
        ``lodo-<db>`` (a leave-one-database-out view, ``training.lodo``) or
        ``all`` (every patient of the dataset trains, its test part too: for the
        published default; its test figures are on seen patients).
    dataset : str
        Dataset folder; empty: ``artifacts/datasets/<split>`` (built if missing).
    epochs, batch_size : int
        Passes over the training part; images per step.
    learning_rate : float
        Adam's initial learning rate (halved when validation loss stalls).
    class_caps : dict
        Class name -> most training images used (random, seeded); test is never capped.
    balance : str
        Class weights: ``none``, ``sqrt`` (square root of inverse frequency) or
        ``balanced`` (inverse frequency).
    augment : bool
        Random horizontal shift (+-4 px) and line thickening of training images.
    edge_blank : float
        Share of augmented training pictures whose left or right edge is blanked
        (as a beat near a strip's start or end is drawn); 0: off.
    flip : float
        Share of augmented training pictures turned upside down: the same beats
        seen through a lead of the other polarity (QRS complexes point down in
        some leads and some patients: mitdb 207's LBBB beats do, 214's do not).
    lowres : float
        Share of augmented training pictures seen as a picture of 1/2 or 1/4
        the columns reads once redrawn (a thumbnail; half of them each); 0: off.
    val_fraction : float
        Share of the training part held out for early stopping.
    val_by : str
        How the validation part is held out: ``beat`` (a stratified share of
        the training beats, whose patients also train; early stopping, the
        learning-rate schedule and the kept weights follow its loss) or
        ``record`` (whole training patients, about ``val_fraction`` of them:
        a development set for recipes that leaves the test patients alone.
        Their class-weighted loss is logged every epoch and their figures are
        kept in ``metrics.json`` as ``validation``; the schedule and the kept
        weights follow the training loss, since the held-out patients' loss
        rose from the first epoch on).
    patience : int
        Epochs without validation-loss improvement before stopping.
    seed : int
        Seeds the split, caps, weight init and shuffling.
    strategy : str
        ``default`` (one device), ``mirrored`` (``tf.distribute.MirroredStrategy``
        over all visible GPUs, or the logical CPUs in tests) or ``multiworker``
        (``tf.distribute.MultiWorkerMirroredStrategy``, cluster from ``TF_CONFIG``).
    """

    model: str = "ecgnet"
    split: str = "random"
    dataset: str = ""
    epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 2e-3
    class_caps: dict = field(default_factory=dict)
    balance: str = "sqrt"
    augment: bool = True
    edge_blank: float = 0.0
    flip: float = 0.0
    lowres: float = 0.0
    val_fraction: float = 0.1
    val_by: str = "beat"
    patience: int = 4
    seed: int = 0
    strategy: str = "default"

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(
                f"model must be one of {', '.join(MODEL_NAMES)}, not {self.model!r}"
            )
        if self.split not in TRAIN_SPLITS:
            raise ValueError(
                f"split must be one of {', '.join(TRAIN_SPLITS)}, not {self.split!r}"
            )
        if self.balance not in BALANCE:
            raise ValueError(f"balance must be one of {', '.join(BALANCE)}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and learning_rate > 0")
        if not 0 <= self.edge_blank <= 1:
            raise ValueError("edge_blank must be between 0 and 1")
        if not 0 <= self.flip <= 1:
            raise ValueError("flip must be between 0 and 1")
        if not 0 <= self.lowres <= 1:
            raise ValueError("lowres must be between 0 and 1")
        if not 0 < self.val_fraction < 0.5:
            raise ValueError("val_fraction must be between 0 and 0.5")
        if self.val_by not in VAL_BY:
            raise ValueError(f"val_by must be one of {', '.join(VAL_BY)}")
        bad = set(self.class_caps) - set(CLASSES)
        if bad:
            raise ValueError(f"class_caps names unknown classes: {sorted(bad)}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (checked as at creation: ValueError)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)


#: What each option means, by field name: the command line's ``train``,
#: ``lodo`` and ``signal-check`` and the dashboard's Train page all take their
#: help from here (and their defaults from :class:`TrainConfig`).
FIELD_HELP: dict[str, str] = {
    "model": "architecture: ecgnet (the default), ecgnet_p4 (its 4x4-patch form, "
    "2.7x slower at 256 columns), ecgnet_v1 (the first default), seed (the "
    "original report's CNN)",
    "split": "random (70:30 by beat), patient (the new-patient protocol: test "
    "patients fixed in each database's adapter), all (every patient trains, its "
    "test part too: a model to publish, its test figures on seen patients), or "
    "lodo-<db>",
    "dataset": "dataset folder (default: artifacts/datasets/<split>, built if missing)",
    "epochs": "passes over the training part; early stopping may end sooner",
    "batch_size": "pictures a step",
    "learning_rate": "Adam's initial learning rate (halved when the loss stalls)",
    "class_caps": "most training pictures of a class, CLASS=N (repeatable); the "
    "test part is never capped",
    "balance": "class weights: none, sqrt (square root of inverse frequency) or "
    "balanced (inverse frequency)",
    "augment": "random shift and line thickening of training pictures",
    "edge_blank": "share of augmented pictures with one edge blanked, as at a "
    "strip's start or end and in tight crops of one beat",
    "flip": "share of augmented pictures turned upside down, as a lead of the "
    "other polarity draws them",
    "lowres": "share of augmented pictures seen as a thumbnail of 1/2 or 1/4 the "
    "columns reads once redrawn",
    "val_fraction": "share of the training part held out for validation",
    "val_by": "validation: beat (a share of training beats; early stopping "
    "follows them) or record (whole training patients: a development set of new "
    "patients, logged every epoch and scored in metrics.json; early stopping "
    "follows the training loss)",
    "patience": "epochs without improvement before early stopping",
    "seed": "seeds the split, caps, weights and shuffling",
    "strategy": "default (one device), mirrored (every GPU, or the logical CPUs) "
    "or multiworker (a cluster from TF_CONFIG)",
}

#: The allowed values of the options that have a list of them.
FIELD_CHOICES: dict[str, tuple[str, ...]] = {
    "model": MODEL_NAMES,
    "split": TRAIN_SPLITS,
    "balance": BALANCE,
    "val_by": VAL_BY,
    "strategy": STRATEGIES,
}
