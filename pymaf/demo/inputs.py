"""Frames in: one image, a folder of images (sorted by name) or a video file. Every frame is RGB uint8
(OpenCV reads BGR; we convert once here, spec §10.21).

Images are read by ``pymaf.data.images.read_image``: an image with an alpha channel (RGBA PNG, WebP) is
composited over a neutral background (the ImageNet mean colour) instead of dropping the alpha channel, and a
truncated JPEG is refused. In a folder, an unusable image is reported (one warning each), skipped and listed
in ``FrameSource.skipped``; the others are processed. A single unusable image is an error."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from pymaf.data.images import read_image
from pymaf.errors import ImageError, InputError, MissingFileError

log = logging.getLogger("pymaf")

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_FPS = 30.0  # frame rate assumed for image folders (smoothing needs one)


@dataclass
class Frame:
    index: int        # 0-based position in the input
    name: str         # image file name (with extension) or the 6-digit frame index for videos
    stem: str         # file stem or the 6-digit frame index: used in output file names
    image: np.ndarray  # [H,W,3] uint8 RGB


class FrameSource:
    """Iterates the frames of an image, a folder of images or a video.

    kind: 'image' | 'folder' | 'video'; fps: the video's frame rate (DEFAULT_FPS for images);
    ``len()`` is the number of frames (for videos, OpenCV's frame count, possibly approximate).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise MissingFileError(f"--input {self.path} does not exist (expected an image, a folder of images "
                                   f"or a video file)")
        self.fps = DEFAULT_FPS
        self.skipped: list[dict[str, str]] = []  # folder images that could not be used: {"file", "reason"}
        if self.path.is_dir():
            self.kind = "folder"
            self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
            if not self.files:
                raise MissingFileError(f"no images ({', '.join(IMAGE_EXTS)}) in folder {self.path}")
        elif self.path.suffix.lower() in VIDEO_EXTS:
            self.kind = "video"
            cap = cv2.VideoCapture(str(self.path))
            ok = cap.isOpened() and cap.read()[0]
            if not ok:
                cap.release()
                raise InputError(f"cannot read video --input {self.path}: OpenCV (FFmpeg) cannot decode a frame "
                                 f"of it; expected a video file ({', '.join(VIDEO_EXTS)})")
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
            self._count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            cap.release()
        else:
            self.kind = "image"
            self.files = [self.path]

    @property
    def name(self) -> str:
        return self.path.stem if self.kind != "folder" else self.path.name

    def __len__(self) -> int:
        return self._count if self.kind == "video" else len(self.files)

    def __iter__(self) -> Iterator[Frame]:
        if self.kind != "video":
            for i, p in enumerate(self.files):
                try:
                    image = read_image(p)
                except ImageError as e:
                    if self.kind != "folder":
                        raise
                    log.warning("skipping input image %s: %s", p, e)
                    self.skipped.append({"file": str(p), "reason": str(e)})
                    continue
                yield Frame(i, p.name, p.stem, image)
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            i = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                yield Frame(i, f"{i:06d}", f"{i:06d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                i += 1
        finally:
            cap.release()


def chunked(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    """Group frames into lists of at most ``size`` (detection and regression are batched per chunk)."""
    buf: list[Frame] = []
    for f in frames:
        buf.append(f)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf
