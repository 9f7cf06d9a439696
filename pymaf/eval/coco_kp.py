"""COCO keypoint AP given GT boxes (paper Table 3; spec §5.4, §10.17).

Prediction: J24 = joints49[:, 25:] -> ``J24_TO_JCOCO`` (17) -> crop projection (f = 5000, tz = 2f/(224 s))
-> crop pixels ``112 (uv + 1)`` -> original pixels by the exact inverse of the crop affine (no rotation,
no +1 or integer step): ``x = c + (px - 112) · 200 s / 224``.

Scores (§10.17):
- ``official_scores=True`` keeps the official results: every keypoint score 1, instance score 1, and the
  area pycocotools derives from the keypoints' bbox (the official code writes area 0; ``loadRes`` replaces it).
- default: keypoint score = 1 if the projected keypoint lies inside the crop else 0; instance score = the
  mean of those (1 when all lie inside); the area is the matched GT annotation's area (GT box of the crop:
  the annotation of that image whose bbox centre is nearest to the crop centre), so APM/APL bin correctly.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path, PurePath
from typing import Any, Mapping

import numpy as np
import torch

from pymaf.body.joints import J24_TO_JCOCO
from pymaf.errors import MissingFileError
from pymaf.geometry import project_crop

CROP = 224.0
STAT_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")


def coco_image_id(imgname: str) -> int:
    """``COCO_val2014_000000123456.jpg`` -> 123456 (the trailing digits of the file stem; §5.4)."""
    m = re.search(r"(\d+)$", PurePath(str(imgname)).stem)
    if m is None:
        raise ValueError(f"cannot parse a COCO image id from {imgname!r} (expected trailing digits)")
    return int(m.group(1))


def project_to_image(joints49: torch.Tensor, cam: torch.Tensor, center: torch.Tensor,
                     scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """joints49 [B,49,3], cam [B,3], center [B,2], scale [B] -> (COCO keypoints in image pixels [B,17,2],
    crop pixels [B,17,2])."""
    j = joints49[:, 25:][:, J24_TO_JCOCO].float()
    px = (project_crop(j, cam.float()) + 1.0) * (CROP / 2.0)                         # crop pixels
    box = (200.0 * scale.float().reshape(-1, 1, 1))
    img = center.float()[:, None, :] + (px - CROP / 2.0) * box / CROP
    return img, px


class COCOKeypointEvaluator:
    """Collects projected keypoints per sample; ``compute`` runs pycocotools' COCOeval('keypoints')."""

    def __init__(self, annotation_file: Path | str, official_scores: bool = False,
                 results_file: Path | str | None = None, verbose: bool = False):
        self.annotation_file = Path(annotation_file)
        if not self.annotation_file.exists():
            raise MissingFileError(f"COCO keypoint annotations not found: {self.annotation_file} "
                                   f"(person_keypoints_val2014.json from cocodataset.org)")
        self.official_scores = official_scores
        self.results_file = Path(results_file) if results_file else None
        self.verbose = verbose
        self._kp: list[torch.Tensor] = []
        self._vis: list[torch.Tensor] = []
        self._center: list[torch.Tensor] = []
        self._names: list[str] = []

    def update(self, batch: Mapping[str, Any], pred: Mapping[str, torch.Tensor]) -> None:
        if "joints" not in pred:
            raise ValueError("COCOKeypointEvaluator: the predictor must return 'joints' [B,49,3]")
        kp, px = project_to_image(pred["joints"], pred["cam"], batch["center"], batch["scale"])
        inside = ((px >= 0) & (px < CROP)).all(-1).float()                            # [B,17]
        self._kp.append(kp.detach())
        self._vis.append(inside)
        self._center.append(batch["center"].float())
        self._names.extend(str(n) for n in batch["imgname"])

    def running(self) -> dict[str, float]:
        """The share of projected keypoints inside the crop so far (a sanity figure; AP needs compute())."""
        return {"inside_crop_%": float(torch.cat(self._vis).mean() * 100)} if self._vis else {}

    def results(self) -> list[dict[str, Any]]:
        """The COCO results list (one entry per sample), as written to the results JSON."""
        kp = torch.cat(self._kp).double().cpu().numpy()
        vis = torch.cat(self._vis).double().cpu().numpy()
        kps = np.ones_like(vis) if self.official_scores else vis
        score = np.ones(len(kp)) if self.official_scores else vis.mean(1)
        out = []
        for i, name in enumerate(self._names):
            flat = np.concatenate([kp[i], kps[i][:, None]], 1).reshape(-1)
            out.append({"image_id": coco_image_id(name), "category_id": 1,
                        "keypoints": [float(x) for x in flat], "score": float(score[i])})
        return out

    def _gt_areas(self, gt, results: list[dict[str, Any]]) -> list[float]:
        centers = torch.cat(self._center).double().cpu().numpy()
        areas = []
        for r, c in zip(results, centers):
            anns = gt.loadAnns(gt.getAnnIds(imgIds=[r["image_id"]], catIds=[1], iscrowd=False))
            if not anns:
                areas.append(0.0)
                continue
            boxes = np.array([a["bbox"] for a in anns], dtype=np.float64)
            d = np.linalg.norm(boxes[:, :2] + boxes[:, 2:] / 2 - c[None], axis=1)
            areas.append(float(anns[int(d.argmin())]["area"]))
        return areas

    def compute(self) -> dict[str, Any]:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        if not self._kp:
            raise ValueError("COCOKeypointEvaluator.compute: no sample was evaluated")
        results = self.results()
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            gt = COCO(str(self.annotation_file))
            if self.results_file is not None:
                self.results_file.parent.mkdir(parents=True, exist_ok=True)
                self.results_file.write_text(json.dumps(results))
            dt = gt.loadRes([dict(r) for r in results])
            if not self.official_scores:  # §10.17: areas from the GT boxes, not the keypoints' bbox
                for i, area in enumerate(self._gt_areas(gt, results)):
                    dt.anns[i + 1]["area"] = area  # loadRes numbers the results 1..N in order
            ev = COCOeval(gt, dt, "keypoints")
            ev.params.useSegm = None
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        if self.verbose:
            print(log.getvalue())
        stats = {name: float(v) * 100.0 for name, v in zip(STAT_NAMES, ev.stats)}
        stats["score_mode"] = "official (score=1, keypoint-bbox area)" if self.official_scores else \
            "inside-crop visibility score, GT-annotation area"
        return stats

    def samples(self) -> dict[str, np.ndarray]:
        if not self._kp:
            return {}
        return {"imgname": np.array(self._names), "keypoints_coco": torch.cat(self._kp).cpu().numpy(),
                "inside_crop": torch.cat(self._vis).cpu().numpy()}
