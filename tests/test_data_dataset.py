"""SPIN-format npz reading/validation, the per-sample dict of spec §4.2, missing images, eval datasets, fits."""
from __future__ import annotations

import io
import pickle
import zipfile

import cv2
import numpy as np
import pytest
import torch

from pymaf import paths
from pymaf.data.dataset import BaseDataset, build_dataset
from pymaf.data.fits import apply_final_fits, load_final_fits
from pymaf.data.loader import build_loader
from pymaf.data.spin_npz import SpinFormatError, load_spin_npz, save_spin_npz

N = 4


def _images(folder, n=N, size=(60, 80)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        cv2.imwrite(str(folder / f"im{i}.jpg"), (rng.random(size + (3,)) * 255).astype(np.uint8))
        names.append(f"im{i}.jpg")
    return names


def _base(names):
    return dict(imgname=names, center=np.tile([40.0, 30.0], (len(names), 1)), scale=np.full(len(names), 0.3))


def test_sample_has_every_key_with_its_shape(tmp_path):
    names = _images(tmp_path)
    rng = np.random.default_rng(1)
    save_spin_npz(tmp_path / "d.npz", **_base(names), part=rng.random((N, 24, 3)) * 50, openpose=np.zeros((N, 25, 3)),
                  S=rng.normal(size=(N, 24, 4)), pose=rng.normal(size=(N, 72)) * 0.2, shape=rng.normal(size=(N, 10)),
                  gender=["m", "f", "n", "x"])
    ds = BaseDataset(tmp_path / "d.npz", tmp_path, "demo", is_train=True)
    s = ds[(2, 5)]
    shapes = {"img": (3, 224, 224), "pose": (72,), "betas": (10,), "pose_3d": (24, 4), "keypoints": (49, 3),
              "smpl_2dkps": (24, 3), "center": (2,), "orig_shape": (2,)}
    for key, shape in shapes.items():
        assert tuple(s[key].shape) == shape, key
    for key in ("has_smpl", "has_pose_3d", "scale", "is_flipped", "rot_angle", "gender", "sample_index", "skipped"):
        assert s[key].shape == (), key
    assert s["img"].dtype == torch.float32 and abs(float(s["img"].mean())) < 2
    assert s["orig_shape"].tolist() == [60, 80] and int(s["sample_index"]) == 2
    assert float(s["has_smpl"]) == 1 and float(s["has_pose_3d"]) == 1  # has_smpl defaults to 1 with pose+shape
    assert s["imgname"] == str(tmp_path / "im2.jpg") and s["dataset_name"] == "demo"
    assert s["maskname"] == "" and s["partname"] == ""
    assert [int(ds[i]["gender"]) for i in range(N)] == [0, 1, -1, 1]  # 'n' -> -1 (pymaf), other -> 1 (official)
    batch = next(iter(build_loader(ds, batch_size=2, num_workers=0)))
    assert batch["img"].shape == (2, 3, 224, 224) and batch["imgname"][1].endswith("im1.jpg")


def test_missing_fields_get_documented_defaults(tmp_path):
    names = _images(tmp_path)
    save_spin_npz(tmp_path / "d.npz", **_base(names))
    ann = load_spin_npz(tmp_path / "d.npz")
    assert not ann.has_pose_3d and ann.keypoints.shape == (N, 49, 3) and (ann.gender == -1).all()
    s = BaseDataset(tmp_path / "d.npz", tmp_path, "demo")[0]
    for key in ("pose", "betas", "pose_3d", "has_smpl", "has_pose_3d"):
        assert not s[key].any(), key
    assert (s["keypoints"][:, 2] == 0).all()


@pytest.mark.parametrize("field,value,found", [("part", np.zeros((N, 14, 3)), "(4, 14, 3)"),
                                               ("pose", np.zeros((N, 69)), "(4, 69)"),
                                               ("center", np.zeros((N + 1, 2)), "(5, 2)")])
def test_wrong_shape_names_file_field_and_shapes(tmp_path, field, value, found):
    arrays = dict(_base(["a.jpg"] * N), **{field: value})
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(SpinFormatError) as e:
        load_spin_npz(tmp_path / "bad.npz")
    msg = str(e.value)
    assert "bad.npz" in msg and f"'{field}'" in msg and found in msg and "expected" in msg


def test_required_field_and_object_arrays(tmp_path):
    np.savez(tmp_path / "noscale.npz", imgname=np.array(["a.jpg"]), center=np.zeros((1, 2)))
    with pytest.raises(SpinFormatError, match="scale"):
        load_spin_npz(tmp_path / "noscale.npz")
    # object arrays (python lists of str saved with pickling) load through the restricted unpickler
    np.savez(tmp_path / "obj.npz", imgname=np.array(["a.jpg", "b.jpg"], dtype=object), center=np.zeros((2, 2)),
             scale=np.ones(2), gender=np.array(["f", "m"], dtype=object))
    ann = load_spin_npz(tmp_path / "obj.npz")
    assert list(ann.imgname) == ["a.jpg", "b.jpg"] and ann.gender.tolist() == [1, 0]
    # ... and refuse anything else
    evil = pickle.dumps(np.array([print], dtype=object), protocol=2)
    with zipfile.ZipFile(tmp_path / "evil.npz", "w") as zf:
        zf.writestr("imgname.npy", _npy_object_bytes(evil))
        zf.writestr("center.npy", _npy_bytes(np.zeros((1, 2))))
        zf.writestr("scale.npy", _npy_bytes(np.ones(1)))
    with pytest.raises(SpinFormatError, match="not allowed"):
        load_spin_npz(tmp_path / "evil.npz")


def _npy_bytes(arr: np.ndarray) -> bytes:
    f = io.BytesIO()
    np.save(f, arr)
    return f.getvalue()


def _npy_object_bytes(payload: bytes) -> bytes:
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    return f.getvalue() + payload


def test_missing_image_raises_or_is_skipped_and_counted(tmp_path):
    names = _images(tmp_path)
    (tmp_path / names[1]).unlink()
    (tmp_path / names[2]).write_bytes(b"not a jpeg")
    save_spin_npz(tmp_path / "d.npz", **_base(names))
    ds = BaseDataset(tmp_path / "d.npz", tmp_path, "demo")
    with pytest.raises(FileNotFoundError, match="im1.jpg"):
        ds[1]
    with pytest.raises(FileNotFoundError, match="im2.jpg"):
        ds[2]
    skip = BaseDataset(tmp_path / "d.npz", tmp_path, "demo", skip_missing=True)
    s = skip[1]
    assert int(s["sample_index"]) == 3 and int(s["skipped"]) == 2 and skip.num_skipped == 2
    # in worker processes the error reaches the main process (no silent crash) ...
    with pytest.raises(FileNotFoundError, match="im1.jpg"):
        list(build_loader(ds, batch_size=2, num_workers=1, persistent_workers=False))
    # ... and skips are counted in the batches
    total = sum(int(b["skipped"].sum()) for b in build_loader(skip, batch_size=2, num_workers=1))
    assert total == 3  # index 1 -> 3 (2 skipped), index 2 -> 3 (1 skipped)


def _eval_root(tmp_path):
    """A data root holding tiny versions of every evaluation file of spec §4.6."""
    rng = np.random.default_rng(2)
    for name in ("3dpw", "h36m-p1", "h36m-p2", "h36m-p2-mosh", "mpi-inf-3dhp", "lsp", "coco"):
        img_root = paths.dataset_image_root(tmp_path, name)
        names = _images(img_root, 2)
        fields = _base(names)
        if name == "3dpw":
            fields.update(pose=rng.normal(size=(2, 72)) * 0.2, shape=rng.normal(size=(2, 10)), gender=["m", "f"])
        if name.startswith("h36m") or name == "mpi-inf-3dhp":
            fields.update(S=rng.normal(size=(2, 24, 4)), part=rng.random((2, 24, 3)) * 50)
        if name == "h36m-p2-mosh":
            fields.update(pose=rng.normal(size=(2, 72)) * 0.2, shape=rng.normal(size=(2, 10)))
        if name == "lsp":
            fields.update(part=rng.random((2, 24, 3)) * 50, maskname=["lsp/im1001_segmentation.png"] * 2,
                          partname=["lsp/im1001_part_segmentation.png"] * 2)
        if name == "coco":
            fields.update(part=rng.random((2, 24, 3)) * 50)
        save_spin_npz(paths.dataset_npz(tmp_path, name, "eval"), **fields)
    return tmp_path


def test_evaluation_datasets_provide_their_protocol_fields(tmp_path):
    root = _eval_root(tmp_path)
    pw = build_dataset(root, "3dpw")[1]
    assert int(pw["gender"]) == 1 and float(pw["has_smpl"]) == 1 and pw["pose"].abs().sum() > 0
    for name in ("h36m-p1", "h36m-p2", "h36m-p2-mosh", "mpi-inf-3dhp"):
        s = build_dataset(root, name)[0]
        assert float(s["has_pose_3d"]) == 1 and s["pose_3d"][:, 3].abs().sum() > 0, name
    assert float(build_dataset(root, "h36m-p2-mosh")[0]["has_smpl"]) == 1
    lsp = build_dataset(root, "lsp")[0]
    assert lsp["maskname"] == str(root / "datasets" / "upi-s1h" / "lsp" / "im1001_segmentation.png")
    assert lsp["partname"].endswith("im1001_part_segmentation.png")
    coco = build_dataset(root, "coco")
    assert not coco.is_train and coco[0]["imgname"].startswith(str(root / "datasets" / "coco"))


def test_final_fits_replace_smpl_labels(tmp_path):
    names = _images(tmp_path)
    save_spin_npz(tmp_path / "d.npz", **_base(names))
    betas = np.zeros((N, 10))
    betas[2, 3] = 4.0  # |beta| > 3: zeroed ([P0])
    betas[1] = 0.5
    np.savez(tmp_path / "fits.npz", pose=np.full((N, 72), 0.1), betas=betas, valid_fit=[1, 1, 1, 0])
    fits = load_final_fits(tmp_path / "fits.npz")
    ann = apply_final_fits(load_spin_npz(tmp_path / "d.npz"), fits)
    assert ann.has_smpl.tolist() == [1, 1, 1, 0] and not ann.betas[2].any() and (ann.betas[1] == 0.5).all()
    ds = BaseDataset(tmp_path / "d.npz", tmp_path, "demo", fits_path=tmp_path / "fits.npz")
    assert float(ds[1]["has_smpl"]) == 1 and float(ds[3]["has_smpl"]) == 0 and not ds[3]["pose"].any()
    np.save(tmp_path / "h36m.npy", np.zeros((N, 80)))
    with pytest.raises(SpinFormatError, match=r"\(4, 80\).*\(N, 82\)"):
        load_final_fits(tmp_path / "h36m.npy")
