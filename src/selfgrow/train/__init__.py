"""Training: `Trainer.fit` for one task, `Learner` across a stream, evaluation, checkpoints, device choice."""

from selfgrow.train.checkpoint import checkpoint_dir, load_checkpoint, load_latest, restore, save_checkpoint
from selfgrow.train.device import resolve_device
from selfgrow.train.evaluate import accuracy, predict
from selfgrow.train.learner import Learner, remap_optimizer_state
from selfgrow.train.records import TaskRecord
from selfgrow.train.trainer import FitResult, Trainer

__all__ = [
    "FitResult",
    "Learner",
    "TaskRecord",
    "Trainer",
    "accuracy",
    "checkpoint_dir",
    "load_checkpoint",
    "load_latest",
    "predict",
    "remap_optimizer_state",
    "resolve_device",
    "restore",
    "save_checkpoint",
]
