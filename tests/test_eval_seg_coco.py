"""LSP segmentation scores on hand-made masks and COCO keypoint AP with pycocotools on a generated JSON."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from pymaf.body.joints import J24_TO_JCOCO
from pymaf.eval.coco_kp import COCOKeypointEvaluator, coco_image_id
from pymaf.eval.lsp_seg import LSPSegEvaluator, uncrop_labels

R = 224
Q = (R // 2) ** 2  # pixels per quadrant


def test_lsp_scores_closed_form(tmp_path):
    pred_mask = np.zeros((R, R), np.uint8)
    pred_mask[:, : R // 2] = 1                      # left half
    gt_mask = np.zeros((R, R), np.uint8)
    gt_mask[: R // 2] = 255                         # top half
    pred_parts = pred_mask.copy()                   # part 1 on the left half
    gt_parts = np.zeros((R, R), np.uint8)
    gt_parts[: R // 2, : R // 2] = 1                # TL: 1 (correct)
    gt_parts[: R // 2, R // 2:] = 255               # TR: ignore
    gt_parts[R // 2:, : R // 2] = 2                 # BL: 2 (predicted 1)
    cv2.imwrite(str(tmp_path / "m.png"), gt_mask)
    cv2.imwrite(str(tmp_path / "p.png"), gt_parts)
    # crop == whole image: centre (112,112), box side 224 px -> the uncrop is the identity
    batch = {"center": torch.tensor([[112.0, 112.0]]), "scale": torch.tensor([R / 200.0]),
             "orig_shape": torch.tensor([[R, R]]), "maskname": ["m.png"], "partname": ["p.png"], "imgname": ["a"]}
    ev = LSPSegEvaluator(None, tmp_path)
    ev.update(batch, {"mask": torch.from_numpy(pred_mask)[None], "parts": torch.from_numpy(pred_parts)[None]})
    m = ev.compute()
    assert m["fg_bg_accuracy"] == pytest.approx(50.0)
    assert m["fg_bg_f1"] == pytest.approx(0.5)       # TP = FP = FN = Q for both classes
    # F1: bg 1 (BR), part 1 2Q/(2Q+Q) = 2/3 (BL is a false positive), part 2 0; parts 3..6 absent
    assert m["parts_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert m["parts_accuracy"] == pytest.approx(75.0)  # 255 -> 0: TR counts as correct background


def test_uncrop_nearest_places_the_crop():
    labels = np.zeros((R, R), np.uint8)
    labels[: R // 2] = 3
    out = uncrop_labels(labels, np.array([50.0, 50.0]), 0.5, (120, 150))  # 100 px box at x 0..100, y 0..100
    assert out.shape == (120, 150)
    assert set(np.unique(out).tolist()) <= {0, 3}                          # nearest: no blended labels
    ys, xs = np.nonzero(out == 3)
    assert xs.min() == 0 and xs.max() == 99 and ys.min() == 0 and ys.max() == 49
    assert (out[50:, :] == 0).all() and (out[:, 100:] == 0).all()


def _coco_fixture(tmp_path, rng):
    persons = [(1, (40.0, 30.0, 60.0, 120.0)), (1, (120.0, 20.0, 50.0, 140.0)), (2, (10.0, 10.0, 100.0, 150.0))]
    anns, samples = [], []
    for k, (img, (x, y, w, h)) in enumerate(persons):
        kp = np.stack([x + rng.uniform(0, w, 17), y + rng.uniform(0, h, 17), np.full(17, 2.0)], 1)
        anns.append({"id": k + 1, "image_id": img, "category_id": 1, "iscrowd": 0, "bbox": [x, y, w, h],
                     "area": w * h * 0.6, "num_keypoints": 17, "keypoints": kp.reshape(-1).tolist()})
        samples.append((f"val2014/COCO_val2014_{img:012d}.jpg", np.array([x + w / 2, y + h / 2]),
                        1.2 * max(w, h) / 200.0, kp[:, :2]))
    gt = {"images": [{"id": i, "width": 300, "height": 300, "file_name": f"COCO_val2014_{i:012d}.jpg"}
                     for i in (1, 2)],
          "annotations": anns,
          "categories": [{"id": 1, "name": "person", "supercategory": "person",
                          "keypoints": [f"k{i}" for i in range(17)], "skeleton": []}]}
    path = tmp_path / "person_keypoints_val2014.json"
    path.write_text(json.dumps(gt))
    return path, samples


def _predict_exact(samples, noise=0.0, rng=None):
    """joints49 whose projection with cam (1,0,0) lands exactly on the GT keypoints (z = 0, so the
    normalised crop coordinate equals x, y)."""
    joints = torch.zeros(len(samples), 49, 3)
    for i, (_, c, s, kp) in enumerate(samples):
        uv = (kp - c) / (200.0 * s / 2.0)
        if noise:
            uv = uv + rng.normal(0, noise, uv.shape)
        joints[i, 25 + np.array(J24_TO_JCOCO), :2] = torch.from_numpy(uv).float()
    cam = torch.tensor([[1.0, 0.0, 0.0]]).repeat(len(samples), 1)
    batch = {"imgname": [s[0] for s in samples], "center": torch.tensor(np.stack([s[1] for s in samples])).float(),
             "scale": torch.tensor([s[2] for s in samples]).float()}
    return batch, {"joints": joints, "cam": cam, "verts": torch.zeros(len(samples), 1, 3)}


@pytest.mark.parametrize("official", [False, True])
def test_coco_ap_perfect_predictions(tmp_path, official):
    rng = np.random.default_rng(0)
    ann, samples = _coco_fixture(tmp_path, rng)
    ev = COCOKeypointEvaluator(ann, official_scores=official, results_file=tmp_path / "res.json")
    batch, pred = _predict_exact(samples)
    ev.update(batch, pred)
    m = ev.compute()
    assert m["AP"] == pytest.approx(100.0) and m["AP50"] == pytest.approx(100.0) and m["AP75"] == pytest.approx(100.0)
    res = json.loads((tmp_path / "res.json").read_text())
    assert [r["image_id"] for r in res] == [1, 1, 2]
    np.testing.assert_allclose(np.array(res[0]["keypoints"]).reshape(17, 3)[:, :2], samples[0][3], atol=1e-3)


def test_coco_ap_drops_with_noise(tmp_path):
    rng = np.random.default_rng(1)
    ann, samples = _coco_fixture(tmp_path, rng)
    ev = COCOKeypointEvaluator(ann)
    ev.update(*_predict_exact(samples, noise=0.3, rng=rng))
    assert ev.compute()["AP"] < 90.0
    assert coco_image_id("COCO_val2014_000000123456.jpg") == 123456
