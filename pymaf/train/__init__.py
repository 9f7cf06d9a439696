"""Training: the loop (:mod:`.trainer`), checkpoints (:mod:`.state`), logging, and torchrun/DDP helpers."""
from pymaf.train.trainer import NonFiniteLossError, Trainer, TrainResult, train

__all__ = ["NonFiniteLossError", "Trainer", "TrainResult", "train"]
