"""Decode one image file into RGB uint8, or raise an error that names the file and what is wrong.

The one image reader of datasets and the demo. OpenCV decodes (``IMREAD_COLOR``, so EXIF orientation is
applied as in the official ``cv2.imread``); what OpenCV would do silently is caught first:

* a missing, empty, undecodable or truncated file -> :class:`pymaf.errors.ImageError` naming it.
  A JPEG without its end-of-image marker is truncated: libjpeg would only print "Premature end of JPEG file"
  and fill the rest with grey.
* an image with an alpha channel (PNG grey+alpha / RGBA, WebP, TIFF) is composited over :data:`BACKGROUND`
  (the ImageNet mean colour, i.e. zero after the model's normalisation) instead of dropping the alpha channel,
  which turns transparent areas into whatever colour the file stores there (usually black).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from pymaf.errors import ImageError

BACKGROUND = np.array([124, 116, 104], np.float32)  # RGB: round(255 * ImageNet mean)
_JPEG_SOI, _JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
_PNG = b"\x89PNG\r\n\x1a\n"
# A JPEG's end marker may be followed by padding or a small trailer; look for it in the last bytes only (an
# embedded EXIF thumbnail has its own end marker near the start of the file).
_EOI_WINDOW = 1024


def is_truncated_jpeg(data: np.ndarray) -> bool:
    """True for JPEG bytes (uint8 [N]) that do not end with an end-of-image marker."""
    buf = data[-_EOI_WINDOW:].tobytes()
    return data[:2].tobytes() == _JPEG_SOI and _JPEG_EOI not in buf


def _may_have_alpha(data: np.ndarray) -> bool:
    head = data[:32].tobytes()
    if head.startswith(_PNG):
        return len(head) > 25 and head[25] in (4, 6)   # IHDR colour type: grey+alpha, RGBA
    return head[:4] in (b"RIFF", b"II*\x00", b"MM\x00*")  # WebP, TIFF: may carry alpha


def composite_alpha(bgra: np.ndarray) -> np.ndarray:
    """[H,W,4] BGRA (uint8 or uint16) -> [H,W,3] uint8 RGB over :data:`BACKGROUND`."""
    scale = 65535.0 if bgra.dtype == np.uint16 else 255.0
    x = bgra.astype(np.float32) / scale
    rgb, a = x[..., 2::-1] * 255.0, x[..., 3:4]
    return np.clip(rgb * a + BACKGROUND * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)


def configure_worker_threads(_worker_id: int | None = None) -> None:
    """Call first in every forked worker (DataLoader ``worker_init_fn``, the synthetic generation workers):
    sequential OpenCV (a forked child inherits no thread pool, and its first parallel cv2 call or
    ``cv2.setNumThreads(n > 0)`` waits for the missing threads forever) and single-threaded torch (one sample per
    core, no oversubscription). ``BaseDataset`` calls it on its first sample in a process other than its creator's."""
    cv2.setNumThreads(0)
    torch.set_num_threads(1)


def read_image(path: str | Path) -> np.ndarray:
    """The image at ``path`` as [H,W,3] uint8 RGB (grey converted, alpha composited over BACKGROUND)."""
    p = Path(path)
    try:
        data = np.fromfile(p, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageError(f"image not found: {p}") from None
    except OSError as e:
        raise ImageError(f"cannot read image {p}: {e.strerror or e}") from None
    if data.size == 0:
        raise ImageError(f"image is empty ({p}, 0 bytes)")
    if is_truncated_jpeg(data):
        raise ImageError(f"image is truncated ({p}, {data.size} bytes): the JPEG data stops before its end "
                        "marker (an interrupted copy or download?)")
    if _may_have_alpha(data):
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if img is not None and img.ndim == 3 and img.shape[2] == 4:
            return composite_alpha(img)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError(f"cannot decode image {p} ({data.size} bytes): not an image, or a corrupt or "
                        "unsupported format (expected JPEG, PNG, BMP, TIFF or WebP)")
    return np.ascontiguousarray(bgr[:, :, ::-1])


__all__ = ["read_image", "configure_worker_threads", "composite_alpha", "is_truncated_jpeg", "BACKGROUND"]
