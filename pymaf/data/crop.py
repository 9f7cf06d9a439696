"""Crop geometry and resize backends of the official pipeline (spec §4.3).

Geometry: the affine ``T(c, s, res, rot)`` with h = 200 s maps original pixels to crop pixels,
``x' = (res/h)(x - cx) + res/2`` (same for y), followed, when rot != 0, by a rotation of -rot degrees
about the crop centre (the image content is rotated +rot degrees, counter-clockwise as displayed).
The official point transform works on ``pt - 1``, truncates to int and adds 1; the crop corners come
from that quantised transform, and so (by default) do the keypoint targets (§10.6).

Backends (the ``backend`` argument):
- ``"spin"``: what SPIN / the conference code [P0] did with ``scipy.misc.imrotate``/``imresize`` and what the
  released checkpoint was trained on (§10.7): the float crop is *bytescaled* (min -> 0, max -> 255, jointly over
  the channels), then rotated with PIL bilinear and resized with PIL bilinear (antialiased). Emulated with the
  same operations in numpy + PIL (the rotation computes only the window that the crop keeps).
- ``"head"``: HEAD's pipeline: bilinear rotation of the float crop without stretching (skimage ``rotate``,
  here cv2 ``warpAffine``, same centre and direction), then PIL bicubic resize of the uint8 crop.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

BACKENDS = ("spin", "head")


def get_affine(center: np.ndarray, scale: float, res: int, rot: float = 0.0) -> np.ndarray:
    """The 3x3 affine ``T`` from original-image pixels to ``res x res`` crop pixels (§4.3).

    Computed in float64 with the official operations in the official order (``-c/h + .5``, ``rot·π/180``,
    ``t_inv·(R·(t_shift·T))``), so that the truncation of :func:`transform_points` lands where the official one
    does, to the last bit."""
    h = 200.0 * float(scale)
    t = np.zeros((3, 3))
    t[0, 0] = float(res) / h
    t[1, 1] = float(res) / h
    t[0, 2] = res * (-float(center[0]) / h + .5)
    t[1, 2] = res * (-float(center[1]) / h + .5)
    t[2, 2] = 1.0
    if rot != 0:
        a = -rot * np.pi / 180  # rotating the content by +rot == rotating the coordinates by -rot
        sn, cs = np.sin(a), np.cos(a)
        r = np.zeros((3, 3))
        r[0, :2] = [cs, -sn]
        r[1, :2] = [sn, cs]
        r[2, 2] = 1.0
        shift = np.eye(3)
        shift[0, 2] = shift[1, 2] = -res / 2
        unshift = shift.copy()
        unshift[:2, 2] *= -1
        t = np.dot(unshift, np.dot(r, np.dot(shift, t)))
    return t


def transform_points(points: np.ndarray, center: np.ndarray, scale: float, res: int, rot: float = 0.0,
                     invert: bool = False) -> np.ndarray:
    """The official quantised transform of §4.3: ``trunc(T·(pt - 1, 1)) + 1`` (or T^-1). points [..., 2] -> [..., 2].

    The float64 product is truncated as it is, exactly like the official ``astype(int)``: an integer box whose
    inverse lands on 299.99999999999994 gives 299, as there (no rounding first: it would shift such crops by a
    pixel against the official labels)."""
    t = get_affine(center, scale, res, rot)
    if invert:
        t = np.linalg.inv(t)
    p = np.asarray(points, dtype=np.float64) - 1.0
    x = t[0, 0] * p[..., 0] + t[0, 1] * p[..., 1] + t[0, 2]
    y = t[1, 0] * p[..., 0] + t[1, 1] * p[..., 1] + t[1, 2]
    return np.trunc(np.stack([x, y], axis=-1)) + 1.0


def keypoints_to_crop(kp: np.ndarray, center: np.ndarray, scale: float, res: int = 224, rot: float = 0.0,
                      quirks: bool = True) -> np.ndarray:
    """Original-image pixel coordinates [..., 2] -> normalised crop coordinates in [-1, 1] (§4.3).

    quirks=True: the official ``2 (trunc(T(kp)) + 1)/res - 1`` (integer quantisation, +1 px offset, §10.6).
    quirks=False: the exact map of the pixels ``crop_rotate_resize`` produces (its integer box, rotation about the box
    centre), with pixel centres at integer coordinates: u = -1 and +1 are the crop edges, so an image flip is
    exactly u -> -u.
    """
    kp = np.asarray(kp, dtype=np.float64)
    if quirks:
        return 2.0 * transform_points(kp + 1.0, center, scale, res, rot) / res - 1.0
    ul, br, _ = crop_box(center, scale, res, 0.0)
    e = kp + 0.5  # pixel-edge coordinates
    if rot != 0:
        m = (ul + br) / 2.0
        a = math.radians(rot)  # content rotated +rot, counter-clockwise as displayed (y down)
        r = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        e = (e - m) @ r.T + m
    return 2.0 * (e - ul) / (br - ul) - 1.0


def crop_box(center: np.ndarray, scale: float, res: int, rot: float = 0.0) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer corners ``ul``, ``br`` (x, y) of the region to cut, and the rotation padding (§4.3 steps 1-2)."""
    ul = transform_points(np.array([1.0, 1.0]), center, scale, res, invert=True).astype(np.int64) - 1
    br = transform_points(np.array([res + 1.0, res + 1.0]), center, scale, res, invert=True).astype(np.int64) - 1
    pad = 0
    if rot != 0:
        pad = int(np.linalg.norm(br - ul) / 2 - float(br[1] - ul[1]) / 2)
        ul, br = ul - pad, br + pad
    return ul, br, pad


def _cut(img: np.ndarray, ul: np.ndarray, br: np.ndarray) -> np.ndarray:
    """The region [ul, br) of ``img`` (same dtype), zero outside the image (§4.3 step 3)."""
    h, w = img.shape[:2]
    out = np.zeros((int(br[1] - ul[1]), int(br[0] - ul[0])) + img.shape[2:], img.dtype)
    x0, x1 = max(0, -ul[0]), min(br[0], w) - ul[0]
    y0, y1 = max(0, -ul[1]), min(br[1], h) - ul[1]
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = img[max(0, ul[1]):min(h, br[1]), max(0, ul[0]):min(w, br[0])]
    return out


def bytescale(x: np.ndarray) -> np.ndarray:
    """``scipy.misc.bytescale`` of an image: (x - min) * 255/(max - min), clipped, rounded half up, uint8.

    uint8 input (the usual case: the float32 copy of a uint8 image in the official code) goes through a 256-entry
    lookup table computed in float32, which gives the same bytes without a float copy of the region.
    """
    lo, hi = float(x.min()), float(x.max())
    span = hi - lo if hi > lo else 1.0
    if x.dtype == np.uint8:
        lut = (np.clip((np.arange(256, dtype=np.float32) - np.float32(lo)) * np.float32(255.0 / span), 0.0, 255.0)
               + np.float32(0.5)).astype(np.uint8)
        return lut[x]
    y = (x.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / span)
    return (np.clip(y, 0.0, 255.0) + 0.5).astype(np.uint8)


def _pil_rotate_strip(pil: Image.Image, angle: float, pad: int) -> Image.Image:
    """``pil.rotate(angle, BILINEAR)`` with ``pad`` pixels stripped from every side (what scipy's ``imrotate`` and
    the official crop do), computing only the kept window: the same affine map as Pillow's ``rotate`` with the
    output shifted by ``pad``, so the pixels are those of rotate-then-crop (up to float rounding: a few pixels per
    million differ by 1) at about half the cost."""
    w, h = pil.size
    angle = angle % 360.0
    if angle % 90.0 == 0.0:  # Pillow takes transpose shortcuts for these angles
        return pil.rotate(angle, resample=Image.BILINEAR).crop((pad, pad, w - pad, h - pad))
    a = -math.radians(angle)
    m = [round(math.cos(a), 15), round(math.sin(a), 15), 0.0, round(-math.sin(a), 15), round(math.cos(a), 15), 0.0]
    cx, cy = w / 2, h / 2
    m[2] = m[0] * -cx + m[1] * -cy + m[2] + cx + (m[0] + m[1]) * pad
    m[5] = m[3] * -cx + m[4] * -cy + m[5] + cy + (m[3] + m[4]) * pad
    return pil.transform((w - 2 * pad, h - 2 * pad), Image.AFFINE, m, resample=Image.BILINEAR)


def _cv2_rotate_strip(region: np.ndarray, angle: float, pad: int) -> np.ndarray:
    """Bilinear float rotation of ``region`` about its centre (skimage ``rotate`` convention) with ``pad`` pixels
    stripped from every side, computing only the kept window."""
    h, w = region.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    m[:, 2] -= pad
    return cv2.warpAffine(region.astype(np.float32), m, (w - 2 * pad, h - 2 * pad), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop_rotate_resize(img: np.ndarray, center: np.ndarray, scale: float, res: int = 224, rot: float = 0.0,
               backend: str = "spin") -> np.ndarray:
    """Crop, rotate and resize ``img`` [H, W, 3] (uint8 or float, RGB) to [res, res, 3] uint8 (§4.3)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown crop backend {backend!r}; expected one of {BACKENDS}")
    ul, br, pad = crop_box(center, scale, res, rot)
    if br[0] - ul[0] < 1 or br[1] - ul[1] < 1:
        raise ValueError(f"degenerate crop box {ul.tolist()}..{br.tolist()} for center {list(center)}, scale {scale}")
    region = _cut(img, ul, br)
    if backend == "spin":
        pil = Image.fromarray(bytescale(region))  # scipy's toimage() on the float crop, once
        if rot != 0:
            pil = _pil_rotate_strip(pil, rot, pad)
        return np.asarray(pil.resize((res, res), resample=Image.BILINEAR))
    if rot != 0:
        region = _cv2_rotate_strip(region, rot, pad)
    # HEAD: np.uint8 cast (truncation) of the float crop, then PIL's default resize filter (bicubic).
    u8 = region if region.dtype == np.uint8 else np.clip(region, 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(np.ascontiguousarray(u8)).resize((res, res), resample=Image.BICUBIC))
