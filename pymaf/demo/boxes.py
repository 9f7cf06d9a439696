"""Person boxes: a torchvision detector, a user JSON file (``--bboxes``) or the whole frame (``--full-image``).

Boxes are float arrays [K,5] = (x1, y1, x2, y2, score) in full-image pixels (continuous coordinates, pixel
(row i, col j) covers [j, j+1) x [i, i+1)).

``--bboxes`` JSON format (either form):

* an object keyed by frame: ``{"img_001.jpg": [[x1, y1, x2, y2], [x1, y1, x2, y2, score]], "img_002.jpg": []}``.
  Keys are image file names (with or without extension) for images and folders, and frame indices
  (``"0"``, ``"1"``, ... or ``"000000"``, 0-based) for videos. A frame without a key has no people.
* a list with one entry per frame in input order: ``[[[x1, y1, x2, y2], ...], [], ...]``.

A missing score is 1. Optional 5th element = score; further elements are ignored.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from pymaf.errors import InputError

# torchvision COCO person detectors: name -> (builder, weights enum in torchvision.models.detection). The COCO_V1
# weights come through torchvision's weights API: downloaded once into the torch hub cache
# (<TORCH_HOME>/hub/checkpoints/<file name of the URL>), read from there afterwards.
DETECTORS = {
    "fasterrcnn": ("fasterrcnn_resnet50_fpn", "FasterRCNN_ResNet50_FPN_Weights"),
    "fasterrcnn_v2": ("fasterrcnn_resnet50_fpn_v2", "FasterRCNN_ResNet50_FPN_V2_Weights"),
    "keypointrcnn": ("keypointrcnn_resnet50_fpn", "KeypointRCNN_ResNet50_FPN_Weights"),
    "fasterrcnn_mobilenet": ("fasterrcnn_mobilenet_v3_large_fpn", "FasterRCNN_MobileNet_V3_Large_FPN_Weights"),
}
PERSON_LABEL = 1  # COCO category id of "person" in torchvision detectors


class DetectorUnavailable(InputError, RuntimeError):
    """No detector weights on this machine and they cannot be downloaded (offline), or a given/cached file
    that cannot be used."""


def full_image_box(height: int, width: int) -> np.ndarray:
    """The whole frame as one person: [1,5] (0, 0, W, H, 1). Squared and centred by the crop (spec §6)."""
    return np.array([[0.0, 0.0, float(width), float(height), 1.0]], dtype=np.float32)


def _as_box_array(entry: Sequence, where: str) -> np.ndarray:
    out = np.zeros((len(entry), 5), dtype=np.float32)
    for k, b in enumerate(entry):
        if not isinstance(b, (list, tuple)) or len(b) < 4:
            raise ValueError(f"--bboxes {where}[{k}]: expected [x1, y1, x2, y2(, score)], got {b!r}")
        x1, y1, x2, y2 = (float(v) for v in b[:4])
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"--bboxes {where}[{k}]: need x2 > x1 and y2 > y1, got {b!r}")
        out[k] = (x1, y1, x2, y2, float(b[4]) if len(b) > 4 else 1.0)
    return out


class JsonBoxes:
    """Boxes from a ``--bboxes`` JSON file (format in the module docstring). Call with a Frame -> [K,5]."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"--bboxes {self.path}: cannot read JSON ({e})") from e
        self.by_index: dict[int, np.ndarray] = {}
        self.by_key: dict[str, np.ndarray] = {}
        if isinstance(data, list):
            for i, entry in enumerate(data):
                self.by_index[i] = _as_box_array(entry, f"{self.path}[{i}]")
        elif isinstance(data, dict):
            for key, entry in data.items():
                self.by_key[str(key)] = _as_box_array(entry, f"{self.path}[{key!r}]")
        else:
            raise ValueError(f"--bboxes {self.path}: expected a JSON object or list, got {type(data).__name__}")

    def __call__(self, index: int, name: str, stem: str) -> np.ndarray:
        if self.by_index:
            return self.by_index.get(index, np.zeros((0, 5), np.float32))
        for key in (name, stem, str(index), f"{index:06d}"):
            if key in self.by_key:
                return self.by_key[key]
        return np.zeros((0, 5), np.float32)


def detector_weights(kind: str) -> Any:
    """The torchvision weights enum member (COCO_V1) of detector ``kind``."""
    import torchvision.models.detection as det
    if kind not in DETECTORS:
        raise InputError(f"--detector {kind!r}: expected one of {sorted(DETECTORS)}")
    return getattr(det, DETECTORS[kind][1]).COCO_V1


def detector_cache_file(kind: str) -> Path:
    """Where torchvision's weights API keeps detector ``kind``'s file: <torch hub dir>/checkpoints/<name>."""
    url = detector_weights(kind).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def find_detector_weights(kind: str, weights: Optional[str | Path] = None) -> Optional[Path]:
    """``--detector-weights`` checked (DetectorUnavailable if missing), or None: the weights API (torch hub cache,
    downloaded once) provides them."""
    detector_weights(kind)  # checks the name
    if not weights:
        return None
    p = Path(weights)
    if not p.is_file():
        raise DetectorUnavailable(f"--detector-weights {p} does not exist")
    return p


def _alternatives(kind: str) -> str:
    url, cached = detector_weights(kind).url, detector_cache_file(kind)
    return (f"  download {url} into {cached.parent}/ by hand (or pass --detector-weights FILE),\n"
            f"  or skip detection: --bboxes FILE.json (boxes per frame, see pymaf/demo/boxes.py) or --full-image "
            f"(the whole frame is one person)")


def build_detector(kind: str, weights: Optional[str | Path] = None) -> torch.nn.Module:
    """The torchvision detector ``kind`` (CPU, train mode): from ``weights`` (a state-dict file) if given, else
    through torchvision's weights API (the torch hub cache; downloaded once). Raises DetectorUnavailable when
    the weights cannot be downloaded (naming the file, the URL and the alternatives) or a file cannot be used."""
    import torchvision.models.detection as det
    path = find_detector_weights(kind, weights)
    builder = getattr(det, DETECTORS[kind][0])
    if path is None:
        cached = detector_cache_file(kind)
        was_cached = cached.is_file()
        try:
            return builder(weights=detector_weights(kind))
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:  # offline, bad hash, broken file
            if was_cached:
                raise DetectorUnavailable(f"cached detector weights {cached} cannot be used ({e}); delete the file "
                                          f"to download it again, or:\n{_alternatives(kind)}") from e
            raise DetectorUnavailable(
                f"person detector weights {cached.name} are not in the torch hub cache ({cached.parent}) and "
                f"cannot be downloaded from {detector_weights(kind).url} ({e}):\n{_alternatives(kind)}") from e
    model = builder(weights=None, weights_backbone=None)
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DetectorUnavailable(f"detector weights {path} do not fit {DETECTORS[kind][0]}: missing "
                                  f"{missing[:5]}, unexpected {unexpected[:5]}")
    return model


class PersonDetector:
    """A torchvision COCO detector restricted to people (weights: ``build_detector``).

    Call with a list of RGB uint8 images -> list of [K,5] float32 boxes (x1, y1, x2, y2, score), sorted by score.
    """

    def __init__(self, kind: str = "fasterrcnn", weights: Optional[str | Path] = None, device: str = "cpu",
                 score_threshold: float = 0.5, min_size: float = 16.0) -> None:
        self.model = build_detector(kind, weights)
        self.model.eval().to(device)
        self.device = device
        self.score_threshold = float(score_threshold)
        self.min_size = float(min_size)

    @torch.inference_mode()
    def __call__(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        batch = [torch.from_numpy(np.ascontiguousarray(im)).to(self.device).permute(2, 0, 1).float() / 255.0
                 for im in images]
        out = []
        for res in self.model(batch):
            keep = (res["labels"] == PERSON_LABEL) & (res["scores"] >= self.score_threshold)
            b = res["boxes"][keep]
            keep2 = ((b[:, 2] - b[:, 0]) >= self.min_size) & ((b[:, 3] - b[:, 1]) >= self.min_size)
            boxes = torch.cat([b[keep2], res["scores"][keep][keep2, None]], dim=1).cpu().numpy().astype(np.float32)
            out.append(boxes[np.argsort(-boxes[:, 4])] if len(boxes) else np.zeros((0, 5), np.float32))
        return out
