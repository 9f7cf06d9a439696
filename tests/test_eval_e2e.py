"""evaluate() end to end on a tiny SPIN-format data root (npz + JPEGs) with an injected stub predictor."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

from pymaf.body import model_file as mf


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from test_smpl import random_model, random_regressor
    root = tmp_path_factory.mktemp("evalroot")
    (root / "smpl").mkdir()
    for i, g in enumerate(("NEUTRAL", "MALE", "FEMALE")):
        mf.save_smpl_npz(random_model(i), root / "smpl" / f"SMPL_{g}.npz")
    np.save(root / "J_regressor_extra.npy", random_regressor(9, 1))
    np.save(root / "J_regressor_h36m.npy", random_regressor(17, 2))
    from pymaf.data.spin_npz import save_spin_npz
    n, rng = 5, np.random.default_rng(0)
    (root / "synthetic" / "images").mkdir(parents=True)
    names = []
    for i in range(n):
        names.append(f"images/{i:04d}.jpg")
        cv2.imwrite(str(root / "synthetic" / names[-1]), rng.integers(0, 255, (64, 48, 3), dtype=np.uint8))
    pose = 0.2 * rng.standard_normal((n, 72))
    pose[:, 0] += math.pi
    save_spin_npz(root / "synthetic" / "synthetic_val.npz", imgname=np.array(names),
                  center=np.tile([24.0, 32.0], (n, 1)), scale=np.full(n, 0.3), pose=pose,
                  shape=rng.standard_normal((n, 10)), gender=np.array(["m", "f", "m", "f", "f"]))
    return root


def test_evaluate_synthetic_with_stub(data_root, tmp_path):
    from pymaf.body.files import resolve_body_files
    from pymaf.body.smpl import build_smpl
    from pymaf.eval import evaluate

    files = resolve_body_files(data_root)
    layers = {g: build_smpl(files, g) for g in ("male", "female")}
    offset = torch.tensor([0.0, 0.0, 0.1])  # 100 mm

    def stub(batch):
        p, b, g = batch["pose"], batch["betas"], batch["gender"]
        v = layers["male"](b, p[:, 3:], p[:, :3], pose2rot=True).vertices
        f = g == 1
        v[f] = layers["female"](b[f], p[f, 3:], p[f, :3], pose2rot=True).vertices
        return {"verts": v + offset, "cam": torch.zeros(len(v), 3), "theta": torch.zeros(len(v), 85)}

    lines: list[str] = []
    doc = evaluate("synthetic-val", None, data_root, batch_size=2, num_workers=0, out_dir=tmp_path,
                   save_samples=True, predictor=stub, log_every=1, printer=lines.append)
    assert doc["num_samples"] == 5 and doc["schema"] == "pymaf-eval/1"
    assert doc["metrics"]["pve"] == pytest.approx(100.0, abs=1e-3)
    assert doc["metrics"]["mpjpe"] == pytest.approx(0.0, abs=1e-3)
    assert len(doc["settings"]["dataset_sha256"]) == 64 and doc["settings"]["checkpoint_sha256"] is None
    on_disk = json.loads((tmp_path / "eval_synthetic-val.json").read_text())
    assert on_disk["metrics"] == doc["metrics"]
    s = np.load(tmp_path / "eval_synthetic-val_samples.npz")
    assert s["pve"].shape == (5,) and s["theta"].shape == (5, 85)
    assert any("samples/s" in line for line in lines)
