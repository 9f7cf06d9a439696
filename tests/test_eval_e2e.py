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
    from helpers import random_model, random_regressor
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


def _write_eval_file(root, name, **fields):
    from pymaf import paths
    from pymaf.data.spin_npz import save_spin_npz
    img_root = paths.dataset_image_root(root, name)
    (img_root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    names = []
    for i in range(3):
        names.append(f"images/{i:04d}.jpg")
        cv2.imwrite(str(img_root / names[-1]), rng.integers(0, 255, (64, 48, 3), dtype=np.uint8))
    npz = paths.dataset_npz(root, name, "eval")
    save_spin_npz(npz, imgname=np.array(names), center=np.tile([24.0, 32.0], (3, 1)), scale=np.full(3, 0.3),
                  **fields)
    return npz


def _stub(batch):
    n = len(batch["img"])
    return {"verts": torch.zeros(n, 6890, 3), "cam": torch.zeros(n, 3)}


def test_no_metric_against_missing_ground_truth(data_root, tmp_path):
    """A mesh protocol on a file without SMPL pose/shape stops with the file and the fields named (it used to
    score against a zero-pose mesh); a protocol that can run without them skips only the PVE and says so."""
    from pymaf.errors import DataError
    from pymaf.eval import evaluate
    npz = _write_eval_file(data_root, "3dpw", gender=np.array(["m", "f", "m"]))
    with pytest.raises(DataError, match=rf"ground truth missing \({npz}\).*'pose' and 'shape'.*3 of 3"):
        evaluate("3dpw", None, data_root, num_workers=0, predictor=_stub, printer=lambda s: None)
    npz = _write_eval_file(data_root, "mpi-inf-3dhp")
    with pytest.raises(DataError, match=rf"\({npz}\).*'S'"):
        evaluate("mpi-inf-3dhp", None, data_root, num_workers=0, predictor=_stub, printer=lambda s: None)
    S = np.concatenate([np.random.default_rng(2).normal(size=(3, 24, 3)), np.ones((3, 24, 1))], -1)
    _write_eval_file(data_root, "h36m-p2-mosh", S=S)
    lines: list[str] = []
    doc = evaluate("h36m-p2-mosh", None, data_root, num_workers=0, predictor=_stub, printer=lines.append,
                   out_dir=tmp_path)
    assert set(doc["metrics"]) == {"mpjpe", "pa_mpjpe", "per_action_pa_mpjpe"}      # no PVE
    assert any(line.startswith("skipped: pve: 3 of 3 samples have no SMPL") for line in lines)
    assert doc["protocol"]["skipped_metrics"] and "pve" not in doc["protocol"]["metrics"]


def test_gendered_models_load_only_where_the_data_needs_them(data_root, tmp_path, monkeypatch):
    """A real SMPL neutral model without MALE/FEMALE files serves synthetic-val when no sample has a gender."""
    import shutil
    root = tmp_path / "root"
    shutil.copytree(data_root / "smpl", root / "smpl")
    for f in ("J_regressor_extra.npy", "J_regressor_h36m.npy"):
        shutil.copy(data_root / f, root / f)
    (root / "smpl" / "SMPL_MALE.npz").unlink()
    (root / "smpl" / "SMPL_FEMALE.npz").unlink()
    from pymaf.data.spin_npz import load_spin_npz, save_spin_npz
    shutil.copytree(data_root / "synthetic" / "images", root / "synthetic" / "images")
    a = load_spin_npz(data_root / "synthetic" / "synthetic_val.npz")
    save_spin_npz(root / "synthetic" / "synthetic_val.npz", imgname=a.imgname, center=a.center, scale=a.scale,
                  pose=a.pose, shape=a.betas)                                          # no gender: neutral GT
    from pymaf.eval import evaluate
    doc = evaluate("synthetic-val", None, root, num_workers=0, predictor=_stub, printer=lambda s: None)
    assert doc["metrics"]["pve"] > 0


def test_amp_runs_on_cpu_and_the_report_records_the_runtime(data_root, tmp_path):
    """pymaf.runtime: bf16 autocast is applied on the CPU too (not dropped), channels_last reaches the input; the
    report's settings name the runtime that ran."""
    from pymaf.config import RuntimeConfig, load_config
    from pymaf.eval import evaluate, model_predictor
    from pymaf.runtime import apply_runtime
    seen = {}

    class Probe(torch.nn.Module):
        def forward(self, img):
            seen.update(autocast=torch.is_autocast_enabled("cpu"), dtype=torch.get_autocast_dtype("cpu"),
                        channels_last=img.is_contiguous(memory_format=torch.channels_last))
            n = img.shape[0]
            return {"smpl_out": [{"verts": torch.zeros(n, 6890, 3), "theta": torch.zeros(n, 85)}]}

    predict = model_predictor(apply_runtime(Probe(), RuntimeConfig(amp="bf16", channels_last=True)))
    predict({"img": torch.zeros(2, 3, 8, 8)})
    assert seen == {"autocast": True, "dtype": torch.bfloat16, "channels_last": True}
    cfg = load_config(None, ["runtime.amp=bf16", "runtime.channels_last=true"])
    doc = evaluate("synthetic-val", None, data_root, num_workers=0, predictor=_stub, printer=lambda s: None, cfg=cfg)
    s = doc["settings"]
    assert (s["device"], s["amp"], s["channels_last"], s["compile"]) == ("cpu", "bf16", True, False)
