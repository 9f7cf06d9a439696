"""``BaseDataset``: one SPIN-format npz + its image folder -> the per-sample dict of spec §4.2.

Every dataset (training sets, and the evaluation sets 3DPW, H36M P1/P2/P2-MoSh, MPI-INF-3DHP, LSP, COCO,
synthetic) is this class with ``is_train=False`` for evaluation. Sample keys (after default collation a batch
holds the same keys with a leading batch dimension; strings become lists):

| key | value |
|---|---|
| img | float32 [3, 224, 224], RGB/255 then ImageNet mean/std |
| pose, betas | float32 [72], [10] (camera-frame axis-angle after rotation/flip); zeros when has_smpl = 0 |
| pose_3d | float32 [24, 4] J24 metres + conf (rotated/flipped); zeros when the file has no `S` |
| keypoints | float32 [49, 3] OpenPose-25 + J24, normalised crop coordinates in [-1, 1] + conf |
| smpl_2dkps | float32 [24, 3] same transform (SMPL joint order; zeros unless the file has it) |
| has_smpl, has_pose_3d | float32 scalar 0/1 |
| scale | float32 scalar: bbox scale x the augmentation scale; center float32 [2] (original pixels) |
| orig_shape | int64 [2] (h, w) of the original image |
| is_flipped | int64 0/1; rot_angle float32 degrees; gender int64 (0 m, 1 f, -1 unknown) |
| sample_index | int64 row in the npz; dataset_name, imgname (full path), maskname, partname (full paths or '') |
| skipped | int64: missing images replaced to produce this sample (``skip_missing=True``, config key ``data.skip_missing_images``); sum it to log |

Keys: ``ds[i]`` draws augmentation from fresh OS entropy; ``ds[(i, seed)]`` draws it from
``np.random.default_rng(seed)``, which is how the batch sampler of ``mixed.py`` makes training reproducible
independently of the number of workers.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pymaf import paths
from pymaf.errors import DataError, ImageError, PymafError
from pymaf.body.joints import J49_FLIP_PERM, SMPL_JOINTS_FLIP_PERM, flip_keypoints
from pymaf.data.augment import (IDENTITY, AugmentConfig, AugmentParams, augment_joints3d, augment_pixels,
                                augment_pose, sample_augmentation)
from pymaf.data.crop import BACKENDS, crop_rotate_resize, keypoints_to_crop
from pymaf.data.fits import apply_final_fits, load_final_fits
from pymaf.data.images import configure_worker_threads, read_image
from pymaf.data.spin_npz import SpinAnnotations, load_spin_npz

log = logging.getLogger("pymaf")

IMG_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMG_STD = np.array([0.229, 0.224, 0.225], np.float32)
MAX_CONSECUTIVE_MISSING = 100


def normalize_image(img: np.ndarray) -> torch.Tensor:
    """float [H, W, 3] RGB in 0..255 -> float32 [3, H, W], ImageNet-normalised (§4.2)."""
    x = (np.asarray(img, np.float32) / np.float32(255.0) - IMG_MEAN) / IMG_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def denormalize_images(img: torch.Tensor) -> list[np.ndarray]:
    """The inverse of :func:`normalize_image` for a batch: [B, 3, H, W] -> B x [H, W, 3] uint8 RGB (rounded)."""
    x = (img.detach().float().permute(0, 2, 3, 1).cpu().numpy() * IMG_STD + IMG_MEAN).clip(0, 1)
    return list((x * 255).round().astype(np.uint8))


class BaseDataset(Dataset):
    """A SPIN-format dataset (spec §4.1-4.4). Constructor arguments are explicit; see ``build_dataset``."""

    def __init__(self, npz_path: Path | str, image_root: Path | str, dataset_name: str, *, is_train: bool = False,
                 use_augmentation: bool = True, augment: AugmentConfig = AugmentConfig(),
                 crop_backend: str = "spin", img_res: int = 224, keypoint_quirks: bool = True,
                 skip_missing: bool = False, ignore_3d: bool = False, mask_root: Path | str | None = None,
                 fits_path: Path | str | None = None, max_abs_beta: float | None = 3.0):
        if crop_backend not in BACKENDS:
            raise ValueError(f"unknown crop_backend {crop_backend!r}; expected one of {BACKENDS}")
        self.ann: SpinAnnotations = load_spin_npz(npz_path)
        if fits_path is not None:
            self.ann = apply_final_fits(self.ann, load_final_fits(fits_path), max_abs_beta)
        self.image_root = Path(image_root)
        self.mask_root = Path(mask_root) if mask_root is not None else None
        self.dataset_name = dataset_name
        self.is_train = is_train
        self.augmenting = is_train and use_augmentation  # §10.20: the switch really disables everything
        self.augment = augment
        self.crop_backend = crop_backend
        self.img_res = img_res
        self.keypoint_quirks = keypoint_quirks
        self.skip_missing = skip_missing
        self.has_pose_3d = self.ann.has_pose_3d and not ignore_3d
        self.has_smpl_2dkps = bool(self.ann.smpl_2dkps.any())
        self.num_skipped = 0  # missing images replaced in this process (workers: sum batch['skipped'])
        self._warned: set[int] = set()
        self._threads_pid = os.getpid()  # a worker process (another pid) configures its threads on its first sample

    def __len__(self) -> int:
        return len(self.ann)

    def image_path(self, index: int) -> str:
        return str(self.image_root / str(self.ann.imgname[index]))

    def _aux_path(self, name: str) -> str:
        if not name:
            return ""
        return str(self.mask_root / name) if self.mask_root is not None else name

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        if self._threads_pid != os.getpid():  # first sample in a DataLoader worker, whatever its worker_init_fn
            configure_worker_threads()
            self._threads_pid = os.getpid()
        index, seed = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (int(key), None)
        if not 0 <= index < len(self):
            raise IndexError(f"{self.dataset_name}: index {index} out of range [0, {len(self)})")
        for skipped in range(MAX_CONSECUTIVE_MISSING):
            idx = (index + skipped) % len(self)
            try:
                img = read_image(self.image_path(idx))
                break
            except PymafError as e:
                problem = e
            if not self.skip_missing:
                way_out = ("or set data.skip_missing_images=true to skip and count such images" if self.is_train
                           else "an evaluation needs every image of the protocol")
                raise ImageError(f"{problem} (sample {idx} of {self.dataset_name}, {self.ann.source}); check the "
                                 f"data root / image folder, {way_out}")
            self.num_skipped += 1
            if idx not in self._warned:  # one warning per image and process, however often it is drawn
                self._warned.add(idx)
                log.warning("%s: skipping an unusable image (sample %d): %s", self.dataset_name, idx, problem)
        else:
            raise DataError(f"{self.dataset_name}: {MAX_CONSECUTIVE_MISSING} consecutive images missing or "
                            f"unreadable from sample {index} on (e.g. {self.image_path(index)}, {self.ann.source})")
        params = sample_augmentation(np.random.default_rng(seed), self.augment) if self.augmenting else IDENTITY
        sample = self.process(idx, img, params)
        sample["skipped"] = torch.tensor(skipped, dtype=torch.int64)
        return sample

    def process(self, idx: int, img: np.ndarray, params: AugmentParams = IDENTITY) -> dict[str, Any]:
        """The §4.2 dict of row ``idx`` given its decoded RGB image [H, W, 3] uint8 and augmentation parameters."""
        a = self.ann
        center, scale = a.center[idx], float(a.scale[idx]) * params.scale
        res = self.img_res
        try:
            crop = crop_rotate_resize(img, center, scale, res, params.rot, self.crop_backend)
        except ValueError as e:
            raise DataError(f"{self.dataset_name}: sample {idx} ({self.image_path(idx)}) of {a.source}: {e}") from e

        kp = a.keypoints[idx].copy()
        kp[:, :2] = keypoints_to_crop(kp[:, :2], center, scale, res, params.rot, self.keypoint_quirks)
        if params.flip:
            kp = flip_keypoints(kp, J49_FLIP_PERM)
        smpl_2dkps = a.smpl_2dkps[idx].copy()
        if self.has_smpl_2dkps:
            smpl_2dkps[:, :2] = keypoints_to_crop(smpl_2dkps[:, :2], center, scale, res, params.rot,
                                                  self.keypoint_quirks)
            if params.flip:
                smpl_2dkps = flip_keypoints(smpl_2dkps, SMPL_JOINTS_FLIP_PERM)
        has_smpl = float(a.has_smpl[idx])
        pose = augment_pose(a.pose[idx], params) if has_smpl else np.zeros(72, np.float32)
        betas = a.betas[idx].copy() if has_smpl else np.zeros(10, np.float32)
        pose_3d = augment_joints3d(a.pose_3d[idx], params) if self.has_pose_3d else np.zeros((24, 4), np.float32)

        f32 = torch.float32
        return {
            "img": normalize_image(augment_pixels(crop, params)),
            "pose": torch.as_tensor(pose, dtype=f32),
            "betas": torch.as_tensor(betas, dtype=f32),
            "pose_3d": torch.as_tensor(pose_3d, dtype=f32),
            "keypoints": torch.as_tensor(kp, dtype=f32),
            "smpl_2dkps": torch.as_tensor(smpl_2dkps, dtype=f32),
            "has_smpl": torch.tensor(has_smpl, dtype=f32),
            "has_pose_3d": torch.tensor(float(self.has_pose_3d), dtype=f32),
            "scale": torch.tensor(scale, dtype=f32),
            "center": torch.tensor(center, dtype=f32),
            "orig_shape": torch.tensor(img.shape[:2], dtype=torch.int64),
            "is_flipped": torch.tensor(int(params.flip), dtype=torch.int64),
            "rot_angle": torch.tensor(params.rot, dtype=f32),
            "gender": torch.tensor(int(a.gender[idx]), dtype=torch.int64),
            "sample_index": torch.tensor(idx, dtype=torch.int64),
            "dataset_name": self.dataset_name,
            "imgname": self.image_path(idx),
            "maskname": self._aux_path(str(a.maskname[idx])),
            "partname": self._aux_path(str(a.partname[idx])),
        }


def build_dataset(data_root: Path | str, name: str, split: str = "eval", *, eft: bool = False,
                  **kwargs: Any) -> BaseDataset:
    """``BaseDataset`` of a registered dataset (pymaf/paths.py) under ``data_root``.

    split: 'train' or 'eval'; ``is_train`` defaults to ``split == 'train'``. ``eft=True`` picks the EFT-fit
    training file where one exists (spec §4.6 HEAD). LSP's maskname/partname resolve under the UPi-S1h folder.
    Other keyword arguments go to ``BaseDataset``.
    """
    root = Path(data_root)
    npz = paths.dataset_npz(root, name, "eft" if eft and split == "train" and paths.dataset(name).eft else split)
    kwargs.setdefault("is_train", split == "train")
    if name == "lsp":
        kwargs.setdefault("mask_root", paths.dataset_image_root(root, "upi-s1h"))
    return BaseDataset(npz, paths.dataset_image_root(root, name), name, **kwargs)
