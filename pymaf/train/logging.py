"""Rank-0 logging: TensorBoard scalars/images and a tqdm progress bar (spec §3.8 names, ``losses/<name>``)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Mapping

import torch

from pymaf.errors import write_error


class TrainLogger:
    """TensorBoard writer + tqdm bar; a no-op on ranks other than 0 (``enabled=False``)."""

    def __init__(self, log_dir: str | Path, total_steps: int, initial_step: int = 0, enabled: bool = True,
                 progress: bool = True) -> None:
        self.enabled = enabled
        self.writer = None
        self.bar = None
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter
        try:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(str(Path(log_dir) / "tb"))
        except OSError as e:  # a read-only or full log dir: name it instead of TensorBoard's raw OSError
            raise write_error(Path(log_dir) / "tb", e) from e
        if progress:
            from tqdm import tqdm
            self.bar = tqdm(total=total_steps, initial=initial_step, dynamic_ncols=True, file=sys.stdout,
                            desc="train", mininterval=2.0)

    def scalars(self, step: int, values: Mapping[str, float], prefix: str = "") -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            self.writer.add_scalar(f"{prefix}{k}", float(v), step)

    def image(self, tag: str, step: int, image_hwc: torch.Tensor) -> None:
        """image_hwc [H,W,3] uint8 or float in [0,1]."""
        if self.writer is not None:
            self.writer.add_image(tag, image_hwc, step, dataformats="HWC")

    def text(self, tag: str, text: str, step: int = 0) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, text, step)

    def progress(self, n: int = 1, **postfix: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)

    def info(self, msg: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(msg)
        else:
            print(msg, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
