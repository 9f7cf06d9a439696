"""Person boxes: a torchvision detector, a user JSON file (``--bboxes``) or the whole frame (``--full-image``).

Boxes are float arrays [K,5] = (x1, y1, x2, y2, score) in full-image pixels (continuous coordinates, pixel
(row i, col j) covers [j, j+1) x [i, i+1)).

``--bboxes`` JSON format (either form):

* an object keyed by frame: ``{"img_001.jpg": [[x1, y1, x2, y2], [x1, y1, x2, y2, score]], "img_002.jpg": []}``.
  Keys are image file names (with or without extension) for images and folders, and frame indices
  (``"0"``, ``"1"``, ... or ``"000000"``, 0-based) for videos. A frame without a key has no people.
* a list with one entry per frame in input order: ``[[[x1, y1, x2, y2], ...], [], ...]``.

A missing score is 1. Optional 5th element = score; further elements are ignored.

Checks (an :class:`InputError` naming the file, the frame key and the box index): every value is a finite
number; x2 > x1 and y2 > y1; each box is at least ``MIN_BOX_SIZE`` pixels wide and high and overlaps its
image. Keys (or list entries) that match no frame of the input are listed in one warning at the end.
"""
from __future__ import annotations

import json
import logging
import math
import pickle
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from pymaf.errors import InputError, MissingFileError

log = logging.getLogger("pymaf")
MIN_BOX_SIZE = 4.0  # px: a smaller user box would regress on a crop of a few interpolated pixels

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


def _number(v: object) -> float | None:
    """``v`` as a finite float, or None (strings, null, booleans, NaN and +-Infinity are not numbers here)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _as_box_array(entry: Sequence, where: str) -> np.ndarray:
    """[K,5] boxes of one frame's JSON entry; ``where`` names the file and frame key for the messages."""
    if not isinstance(entry, list):
        raise InputError(f"--bboxes {where}: expected a list of boxes [[x1, y1, x2, y2(, score)], ...], "
                         f"got {entry!r:.80}")
    out = np.zeros((len(entry), 5), dtype=np.float32)
    for k, b in enumerate(entry):
        if not isinstance(b, list) or len(b) < 4:
            raise InputError(f"--bboxes {where} box {k}: expected [x1, y1, x2, y2(, score)], got {b!r:.80}")
        vals = [_number(v) for v in b[:5]]
        bad = [i for i, v in enumerate(vals) if v is None]
        if bad:
            names = ("x1", "y1", "x2", "y2", "score")
            raise InputError(f"--bboxes {where} box {k}: {names[bad[0]]} = {b[bad[0]]!r} is not a finite number "
                             f"(got {b!r:.80}); expected pixel coordinates")
        x1, y1, x2, y2 = vals[:4]
        if x2 <= x1 or y2 <= y1:
            raise InputError(f"--bboxes {where} box {k}: need x2 > x1 and y2 > y1, got {b!r}")
        out[k] = (x1, y1, x2, y2, vals[4] if len(vals) > 4 else 1.0)
    return out


def check_boxes(boxes: np.ndarray, image_size: tuple[int, int], where: str) -> None:
    """Raise InputError for a box [K,5] smaller than MIN_BOX_SIZE or not overlapping the (H, W) image."""
    h, w = image_size
    for k, (x1, y1, x2, y2, _) in enumerate(boxes.tolist()):
        if x2 - x1 < MIN_BOX_SIZE or y2 - y1 < MIN_BOX_SIZE:
            raise InputError(f"--bboxes {where} box {k}: {x2 - x1:g} x {y2 - y1:g} px is too small (expected at "
                             f"least {MIN_BOX_SIZE:g} x {MIN_BOX_SIZE:g} px around a person)")
        if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
            raise InputError(f"--bboxes {where} box {k}: [{x1:g}, {y1:g}, {x2:g}, {y2:g}] lies entirely outside "
                             f"the {w}x{h} image (expected full-image pixel coordinates x1, y1, x2, y2)")


class JsonBoxes:
    """Boxes from a ``--bboxes`` JSON file (format in the module docstring). Call with a Frame -> [K,5]."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise MissingFileError(f"--bboxes {self.path} does not exist (expected a JSON file of boxes per frame, "
                                   "format: pymaf/demo/boxes.py)")
        try:
            data = json.loads(self.path.read_text())
        except OSError as e:
            raise InputError(f"--bboxes {self.path}: cannot read ({e.strerror or e})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            where = f"line {e.lineno}, column {e.colno}" if isinstance(e, json.JSONDecodeError) else "encoding"
            raise InputError(f"--bboxes {self.path}: not valid JSON ({where}: {getattr(e, 'msg', e)})") from None
        self.by_index: dict[int, np.ndarray] = {}
        self.by_key: dict[str, np.ndarray] = {}
        self.used: set = set()   # keys / indices that matched a frame
        if isinstance(data, list):
            for i, entry in enumerate(data):
                self.by_index[i] = _as_box_array(entry, f"{self.path}[{i}]")
        elif isinstance(data, dict):
            for key, entry in data.items():
                self.by_key[str(key)] = _as_box_array(entry, f"{self.path}[{key!r}]")
        else:
            raise InputError(f"--bboxes {self.path}: expected a JSON object or list, got {type(data).__name__}")

    def __call__(self, index: int, name: str, stem: str,
                 image_size: Optional[tuple[int, int]] = None) -> np.ndarray:
        """Boxes [K,5] of the frame; with ``image_size`` (H, W) they are checked (:func:`check_boxes`)."""
        found, where = np.zeros((0, 5), np.float32), ""
        if self.by_index:
            if index in self.by_index:
                found, where = self.by_index[index], f"{self.path}[{index}]"
                self.used.add(index)
        else:
            for key in (name, stem, str(index), f"{index:06d}"):
                if key in self.by_key:
                    found, where = self.by_key[key], f"{self.path}[{key!r}]"
                    self.used.add(key)
                    break
        if image_size is not None and len(found):
            check_boxes(found, image_size, where)
        return found

    def unmatched(self) -> list[str]:
        """Keys (or list positions) that matched no frame so far, as strings."""
        keys = self.by_index if self.by_index else self.by_key
        return [str(k) for k in keys if k not in self.used]

    def warn_unmatched(self) -> list[str]:
        """Log one warning listing the unmatched keys (call after the last frame); returns them."""
        left = self.unmatched()
        if left:
            shown = ", ".join(repr(k) for k in left[:10]) + (f", ... ({len(left)} in all)" if len(left) > 10 else "")
            log.warning("--bboxes %s: %d %s matched no input frame: %s (keys are image file names or stems, or "
                        "0-based frame indices)", self.path, len(left),
                        "entry" if len(left) == 1 else "entries", shown)
        return left


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
