"""LSP silhouette and 6-part segmentation (paper Table 2; spec §5.3).

The predicted mesh is rendered at 224² with the crop camera (``pymaf.render.PartRenderer``), the mask and
part maps are "uncropped" to the original image with NEAREST resizing (§10.7 fix: HEAD used bicubic on
label maps) and compared with the UPi-S1h ground truth (``maskname``/``partname`` PNGs):

- silhouette: accuracy = Σ(gt == pred)/Σpixels; F1 = mean over {bg, fg} of 2TP/(2TP+FP+FN), TP/FP/FN
  accumulated over the whole set;
- parts: GT 255 = ignore for the F1 (mean over the 7 classes 0..6, background included);
  the parts accuracy sets 255 -> 0 in both maps first (official behaviour).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import cv2
import numpy as np
import torch

from pymaf import metrics
from pymaf.data.crop import crop_box
from pymaf.errors import MissingFileError

LSP_PART_CLASSES = 7  # LSP part segmentation classes: background + 6 parts (UP-3D convention)


def uncrop_labels(labels: np.ndarray, center: np.ndarray, scale: float, orig_shape: tuple[int, int]) -> np.ndarray:
    """A square label map [r, r] of the crop (center, scale) -> [H, W] uint8 map of the original image,
    zeros outside the crop; nearest-neighbour resize to the crop's pixel size (§5.3, §4.3 corners)."""
    res = labels.shape[0]
    h, w = int(orig_shape[0]), int(orig_shape[1])
    ul, br, _ = crop_box(np.asarray(center, dtype=np.float64), float(scale), res)
    cw, ch = int(br[0] - ul[0]), int(br[1] - ul[1])
    out = np.zeros((h, w), dtype=np.uint8)
    if cw <= 0 or ch <= 0:
        return out
    big = cv2.resize(np.ascontiguousarray(labels.astype(np.uint8)), (cw, ch),
                     interpolation=cv2.INTER_NEAREST_EXACT)  # pixel-centre nearest, as PIL NEAREST
    x0, x1 = max(0, ul[0]), min(w, br[0])
    y0, y1 = max(0, ul[1]), min(h, br[1])
    if x1 <= x0 or y1 <= y0:
        return out
    out[y0:y1, x0:x1] = big[y0 - ul[1]:y1 - ul[1], x0 - ul[0]:x1 - ul[0]]
    return out


def _read_label_png(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise MissingFileError(f"LSP segmentation GT not found or unreadable: {path} (UPi-S1h, see "
                               f"`python scripts/check_data.py`)")
    return img


class LSPSegEvaluator:
    """Accumulates fg/bg and part confusions over the set.

    renderer: callable (verts [B,V,3], cam [B,3]) -> (mask [B,224,224], parts [B,224,224]) — a
    ``PartRenderer``; a predictor may instead return ``mask``/``parts`` directly (tests).
    gt_root: folder the ``maskname``/``partname`` entries are relative to (UPi-S1h root).
    """

    def __init__(self, renderer: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None, gt_root: Path | str | None):
        self.renderer = renderer
        self.gt_root = Path(gt_root) if gt_root is not None else None
        self.fg_conf = np.zeros((2, 2), np.int64)
        self.part_conf = np.zeros((LSP_PART_CLASSES, LSP_PART_CLASSES), np.int64)
        self.part_correct = 0
        self.pixels = 0
        self._names: list[str] = []

    def _path(self, name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() or self.gt_root is None else self.gt_root / p

    def update(self, batch: Mapping[str, Any], pred: Mapping[str, torch.Tensor]) -> None:
        if "mask" in pred and "parts" in pred:
            mask, parts = pred["mask"], pred["parts"]
        else:
            if self.renderer is None:
                raise ValueError("LSPSegEvaluator: no renderer and the predictor returned no mask/parts")
            mask, parts = self.renderer(pred["verts"], pred["cam"])
        mask = mask.to(torch.uint8).cpu().numpy()
        parts = parts.to(torch.uint8).cpu().numpy()
        center = torch.as_tensor(batch["center"]).double().cpu().numpy()
        scale = torch.as_tensor(batch["scale"]).double().cpu().numpy().reshape(-1)
        orig = torch.as_tensor(batch["orig_shape"]).long().cpu().numpy()
        for i in range(mask.shape[0]):  # per-sample I/O: read the GT PNGs, uncrop to their size
            gt_mask = (_read_label_png(self._path(batch["maskname"][i])) > 0).astype(np.int64)
            gt_parts = _read_label_png(self._path(batch["partname"][i])).astype(np.int64)
            shape = (int(orig[i][0]), int(orig[i][1]))
            if gt_mask.shape != shape or gt_parts.shape != shape:
                shape = gt_mask.shape  # trust the GT files' size
            pm = uncrop_labels(mask[i], center[i], scale[i], shape).astype(np.int64)
            pp = uncrop_labels(parts[i], center[i], scale[i], shape).astype(np.int64)
            self.fg_conf += metrics.confusion_matrix(pm, gt_mask, 2, ignore_index=None)
            self.part_conf += metrics.confusion_matrix(pp, gt_parts, LSP_PART_CLASSES, ignore_index=255)
            gp = np.where(gt_parts == 255, 0, gt_parts)
            self.part_correct += int((gp == pp).sum())
            self.pixels += gp.size
            self._names.append(str(batch["imgname"][i]) if "imgname" in batch else str(batch["maskname"][i]))

    def running(self) -> dict[str, float]:
        """The scalar metrics over every image so far."""
        return {k: v for k, v in self.compute().items() if not isinstance(v, list)}

    def compute(self) -> dict[str, Any]:
        fg = metrics.segmentation_scores(self.fg_conf)
        pt = metrics.segmentation_scores(self.part_conf)
        return {
            "fg_bg_accuracy": 100.0 * fg["accuracy"],
            "fg_bg_f1": fg["mean_f1"],
            "parts_accuracy": 100.0 * self.part_correct / max(self.pixels, 1),
            "parts_f1": pt["mean_f1"],
            "fg_bg_f1_per_class": [float(x) for x in fg["f1"]],
            "parts_f1_per_class": [float(x) for x in pt["f1"]],
        }

    def samples(self) -> dict[str, np.ndarray]:
        return {"imgname": np.array(self._names)} if self._names else {}
