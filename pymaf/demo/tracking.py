"""Track ids across video frames: IoU between constant-velocity predictions and detections, matched with the
Hungarian algorithm (scipy.optimize.linear_sum_assignment). Ids are stable integers 0, 1, 2, ... in order of
first appearance; a track not matched for ``max_age`` frames is dropped (its id is never reused)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [N,4+] and b [M,4+] (x1, y1, x2, y2) -> [N,M]."""
    a = np.asarray(a, np.float64)[:, None, :4]
    b = np.asarray(b, np.float64)[None, :, :4]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


@dataclass
class _Track:
    id: int
    box: np.ndarray        # [4] last matched box
    velocity: np.ndarray   # [4] per-frame box change (smoothed)
    missed: int = 0

    def predicted(self) -> np.ndarray:
        return self.box + self.velocity * (self.missed + 1)


class IoUTracker:
    """Online tracker. ``update(boxes [K,4+]) -> ids [K] int`` for one frame.

    iou_threshold: minimum IoU between a track's predicted box and a detection to match them;
    max_age: frames a track survives without a match; momentum: velocity smoothing (0 = last step only).
    The constant-velocity prediction keeps the ids of two people whose boxes cross.
    """

    def __init__(self, iou_threshold: float = 0.2, max_age: int = 10, momentum: float = 0.5) -> None:
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        self.momentum = float(momentum)
        self.tracks: list[_Track] = []
        self.next_id = 0

    def update(self, boxes: np.ndarray) -> np.ndarray:
        boxes = np.asarray(boxes, np.float64).reshape(-1, np.asarray(boxes).shape[-1] if len(boxes) else 4)
        ids = -np.ones(len(boxes), dtype=np.int64)
        matched_tracks: set[int] = set()
        if self.tracks and len(boxes):
            pred = np.stack([t.predicted() for t in self.tracks])
            iou = box_iou(pred, boxes)
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] < self.iou_threshold:
                    continue
                t = self.tracks[r]
                step = (boxes[c, :4] - t.box) / (t.missed + 1)
                t.velocity = self.momentum * t.velocity + (1 - self.momentum) * step
                t.box, t.missed = boxes[c, :4].copy(), 0
                ids[c] = t.id
                matched_tracks.add(r)
        for r, t in enumerate(self.tracks):
            if r not in matched_tracks:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_age]
        for c in np.flatnonzero(ids < 0):
            self.tracks.append(_Track(self.next_id, boxes[c, :4].copy(), np.zeros(4)))
            ids[c] = self.next_id
            self.next_id += 1
        return ids
