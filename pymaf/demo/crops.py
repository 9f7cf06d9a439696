"""Square person crops: box -> square (centre, side) -> 224x224 crop by one affine warp, ImageNet-normalised,
batched. The crop geometry is the one the model's camera assumes (spec §4.3 without the integer rounding):
a full-image point x maps to x' = (res / side)(x - cx) + res / 2 (continuous pixel coordinates, pixel centres
at +0.5), bilinear, zero outside the image (as the official video demo, spec §6 step 3)."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from pymaf.data.dataset import IMG_MEAN, IMG_STD


def square_boxes(boxes: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """boxes [K,4+] (x1, y1, x2, y2) -> (centers [K,2], sides [K]) of squares of side scale * max(w, h)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, np.asarray(boxes).shape[-1] if len(boxes) else 4)
    centers = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
    sides = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * float(scale)
    return centers, sides


def crop_affine(center: np.ndarray, side: float, res: int = 224) -> np.ndarray:
    """[2,3] OpenCV affine (pixel-index coordinates) mapping the square (center, side) onto a res x res crop."""
    a = res / float(side)
    # continuous: x' = a (x - c) + res/2 ; OpenCV indices i = x - 0.5  =>  i' = a i + a (0.5 - c) + res/2 - 0.5
    return np.array([[a, 0.0, a * (0.5 - center[0]) + res / 2 - 0.5],
                     [0.0, a, a * (0.5 - center[1]) + res / 2 - 0.5]], dtype=np.float64)


def square_crop(image: np.ndarray, center: np.ndarray, side: float, res: int = 224) -> np.ndarray:
    """One crop: image [H,W,3] uint8 -> [res,res,3] uint8 (same channel order)."""
    return cv2.warpAffine(image, crop_affine(center, side, res), (res, res), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def normalize_crops(crops: np.ndarray) -> torch.Tensor:
    """[K,res,res,3] uint8 RGB -> [K,3,res,res] float32, ImageNet mean/std (what the backbone expects)."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.from_numpy(IMG_MEAN).view(1, 3, 1, 1)
    std = torch.from_numpy(IMG_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def make_crops(images: list[np.ndarray], centers: np.ndarray, sides: np.ndarray, res: int = 224) -> torch.Tensor:
    """Crops of K people: images[k] [H,W,3] uint8 RGB (the frame of person k, may repeat) -> [K,3,res,res]."""
    if len(images) == 0:
        return torch.zeros(0, 3, res, res)
    crops = np.stack([square_crop(im, c, s, res) for im, c, s in zip(images, centers, sides)])
    return normalize_crops(crops)
