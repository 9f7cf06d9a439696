"""The data root and the registry of every external file (spec §9, §4.6).

The data root is ``--data-root``, else ``$PYMAF_DATA``, else ``./data``. Nothing else in the package
builds a path to an external file by hand: it asks this module. ``scripts/check_data.py`` prints the
registry as a table of present / missing / wrong files.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

from pymaf.errors import DataError, InputError, write_error


class UnknownDatasetError(DataError, KeyError):
    """A dataset name that is not in the registry (``--dataset``, ``data.train_datasets``, ``data.eval_dataset``)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""

ENV_DATA_ROOT = "PYMAF_DATA"
ENV_CACHE = "PYMAF_CACHE"


def resolve_data_root(cli_value: str | os.PathLike | None = None) -> Path:
    """``--data-root`` if given, else ``$PYMAF_DATA``, else ``./data`` (not required to exist, but when it
    exists it must be a folder: an InputError names it and where it came from otherwise)."""
    env = os.environ.get(ENV_DATA_ROOT)
    if cli_value:
        root, source = Path(cli_value).expanduser(), "--data-root"
    elif env:
        root, source = Path(env).expanduser(), f"${ENV_DATA_ROOT}"
    else:
        root, source = Path("data"), "the default data root"
    if root.exists() and not root.is_dir():
        raise InputError(f"data root is not a folder ({source} {root}): expected the folder that holds smpl/, "
                         f"dataset_extras/, datasets/; pass --data-root DIR or set ${ENV_DATA_ROOT}")
    return root


def cache_dir() -> Path:
    """Where generated files (the built-in body model) are kept: ``$PYMAF_CACHE`` or ``~/.cache/pymaf``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pymaf"


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object], need: str = "") -> Path:
    """The one atomic writer: ``write(f)`` into ``.<name>.<random>.tmp`` in the same folder, fsync, ``os.replace``.

    A reader never sees a half-written file and a crash leaves the previous file intact; the temporary file is
    removed on any error. An OSError (or torch.save's RuntimeError from inline_container.cc that holds the
    errno) becomes a :class:`pymaf.errors.WriteError` naming ``path`` (with ``need`` when the disk is full)."""
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) or (isinstance(e, RuntimeError) and "inline_container" in str(e)):
            raise write_error(path, e, need) from e
        raise
    return path


# Features that need external files (the "needed by" column of check_data.py).
MODEL, TRAIN, EVAL_3DPW, EVAL_H36M, EVAL_MPI, EVAL_LSP, EVAL_COCO, IUV = (
    "model", "train", "eval-3dpw", "eval-h36m", "eval-mpi-inf-3dhp", "eval-lsp", "eval-coco", "iuv-loss")


@dataclass(frozen=True)
class DataFile:
    """One external file: where it lives under the data root, what it must contain, where to get it.

    ``kind`` tells the checker how to read it: 'smpl' (SMPL .pkl/.npz), 'npy', 'npz', 'mat',
    'mesh_downsampling', 'torch', 'json' or 'dir'. ``shapes`` maps a key (or '' for a bare array) to
    its expected shape; -1 matches any size.
    """
    rel: str
    kind: str
    origin: str
    needed_by: tuple[str, ...]
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    alternatives: tuple[str, ...] = ()  # other accepted relative paths (e.g. a converted .npz)
    note: str = ""


_SMPL_SHAPES = {"v_template": (6890, 3), "shapedirs": (6890, 3, -1), "posedirs": (6890, 3, 207),
                "J_regressor": (24, 6890), "weights": (6890, 24), "kintree_table": (2, 24), "f": (13776, 3)}
_SMPL_ORIGIN = "SMPL v1.0 from smpl.is.tue.mpg.de (neutral: SMPLify's basicModel_neutral_lbs_10_207_0_v1.0.0.pkl), renamed; chumpy not needed"

FILES: dict[str, DataFile] = {
    "smpl_neutral": DataFile("smpl/SMPL_NEUTRAL.pkl", "smpl", _SMPL_ORIGIN, (MODEL, TRAIN), _SMPL_SHAPES,
                             ("smpl/SMPL_NEUTRAL.npz",)),
    "smpl_male": DataFile("smpl/SMPL_MALE.pkl", "smpl", _SMPL_ORIGIN, (EVAL_3DPW,), _SMPL_SHAPES, ("smpl/SMPL_MALE.npz",)),
    "smpl_female": DataFile("smpl/SMPL_FEMALE.pkl", "smpl", _SMPL_ORIGIN, (EVAL_3DPW,), _SMPL_SHAPES,
                            ("smpl/SMPL_FEMALE.npz",)),
    "mean_params": DataFile("smpl_mean_params.npz", "npz", "SPIN data.tar.gz (fetch_data.sh)", (MODEL,),
                            {"pose": (144,), "shape": (10,), "cam": (3,)}),
    "j_regressor_extra": DataFile("J_regressor_extra.npy", "npy", "SPIN data.tar.gz (NOT GraphCMR's 14-row file, spec §10.22)",
                                  (MODEL, TRAIN), {"": (9, 6890)},
                                  note="a (14, 6890) array is GraphCMR's file: wrong content"),
    "j_regressor_h36m": DataFile("J_regressor_h36m.npy", "npy", "SPIN data.tar.gz", (EVAL_3DPW, EVAL_H36M, EVAL_MPI, TRAIN),
                                 {"": (17, 6890)}),
    "mesh_downsampling": DataFile("mesh_downsampling.npz", "mesh_downsampling", "GraphCMR data/ (fetch_data.sh)", (),
                                  {"D": (2,)}, note="optional: the 431-vertex selection is built in (spec Appendix A)"),
    "uv_processed": DataFile("UV_data/UV_Processed.mat", "mat", "DensePose densepose_uv_data.tar.gz", (IUV, TRAIN),
                             {"All_FaceIndices": (-1,), "All_Faces": (-1, 3), "All_U_norm": (-1,), "All_V_norm": (-1,),
                              "All_vertices": (1, -1)}),
    "vertex_texture": DataFile("vertex_texture.npy", "npy", "SPIN data.tar.gz", (EVAL_LSP,), {"": (1, 13776, 2, 2, 2, 3)}),
    "cube_parts": DataFile("cube_parts.npy", "npy", "SPIN data.tar.gz", (EVAL_LSP,), {"": (100, 92, 17)}),
    "resnet50_imagenet": DataFile("pretrained_model/resnet50-19c8e357.pth", "torch", "torchvision model zoo (ResNet-50 V1)",
                                  (), alternatives=("pretrained_model/resnet50-0676ba61.pth",),
                                  note="optional: also found in the torch hub cache"),
    "pymaf_checkpoint": DataFile("pretrained_model/PyMAF_model_checkpoint.pt", "torch",
                                 "PyMAF authors' release (Google Drive link in the official README)", ()),
    "coco_val_annotations": DataFile("datasets/coco/annotations/person_keypoints_val2014.json", "json",
                                     "cocodataset.org 2014 annotations", (EVAL_COCO,)),
    "upi_s1h": DataFile("datasets/upi-s1h", "dir", "UP project (UPi-S1h segmentation PNGs of LSP test)", (EVAL_LSP,)),
}

# Spec §4.6: SPIN-format npz files in <data_root>/dataset_extras/, per dataset and split.
DATASET_FILES: dict[str, dict[str, str]] = {
    "h36m": {"train": "h36m_train.npz"},
    "h36m-p1": {"eval": "h36m_valid_protocol1_newpath.npz"},
    "h36m-p2": {"eval": "h36m_valid_protocol2_newpath.npz"},
    "h36m-p2-mosh": {"eval": "h36m_mosh_valid_p2.npz"},
    "lsp-orig": {"train": "lsp_dataset_original_train.npz"},
    "lsp": {"eval": "lsp_dataset_test.npz"},
    "lspet": {"train": "hr-lspet_train.npz"},
    "mpii": {"train": "mpii_train.npz"},
    "coco": {"train": "coco_2014_train.npz", "eval": "coco_2014_val.npz"},
    "coco-full": {"train": "coco-full_train_eft.npz"},
    "mpi-inf-3dhp": {"train": "mpi_inf_3dhp_train.npz", "eval": "mpi_inf_3dhp_test.npz"},
    "3dpw": {"train": "3dpw_train.npz", "eval": "3dpw_test.npz"},
    "synthetic": {"train": "synthetic_train.npz", "eval": "synthetic_val.npz"},
}
# EFT-setting training files (spec §4.6, HEAD); selected by the 'eft' mixture preset.
DATASET_FILES_EFT: dict[str, str] = {
    "h36m": "h36m_mosh_train.npz", "mpii": "mpii_train_eft.npz", "coco": "coco_2014_train_eft.npz",
    "coco-full": "coco-full_train_eft.npz", "lspet": "hr-lspet_train_eft.npz",
}

# Image roots relative to <data_root>/datasets/.
DATASET_FOLDERS: dict[str, str] = {
    "h36m": "h36m", "h36m-p1": "h36m", "h36m-p2": "h36m", "h36m-p2-mosh": "h36m",
    "lsp-orig": "lsp_original", "lsp": "lsp", "lspet": "hr-lspet", "mpii": "mpii",
    "coco": "coco", "coco-full": "coco", "mpi-inf-3dhp": "mpi_inf_3dhp", "3dpw": "3dpw",
    "upi-s1h": "upi-s1h",
}

DATASET_ORIGINS: dict[str, str] = {
    "h36m": "Human3.6M (vision.imar.ro) + SPIN dataset_extras / PyMAF MoSh files (on request)",
    "lsp": "LSP (sam.johnson.io) + SPIN dataset_extras", "lsp-orig": "LSP original + SPIN dataset_extras",
    "lspet": "LSP-extended (high-res) + SPIN dataset_extras", "mpii": "MPII Human Pose + SPIN dataset_extras",
    "coco": "COCO 2014 + PyMAF/SPIN dataset_extras", "coco-full": "COCO 2014 + PyMAF EFT files",
    "mpi-inf-3dhp": "MPI-INF-3DHP + SPIN dataset_extras", "3dpw": "3DPW (virtualhumans.mpi-inf.mpg.de) + SPIN dataset_extras",
    "synthetic": "generated by scripts/make_synthetic.py (built-in body model)",
}


def dataset_npz(data_root: Path, name: str, split: str) -> Path:
    """The SPIN-format npz of dataset ``name`` for ``split`` ('train' or 'eval')."""
    if name.endswith("-val") and name[:-4] in DATASET_FILES:  # e.g. 'synthetic-val'
        name, split = name[:-4], "eval"
    if name not in DATASET_FILES:
        raise UnknownDatasetError(f"unknown dataset {name!r} (data.train_datasets / data.eval_dataset / --dataset); "
                                  f"known: {', '.join(sorted(DATASET_FILES))}")
    files = DATASET_FILES[name]
    if split not in files:
        raise UnknownDatasetError(f"dataset {name!r} has no {split!r} split (it has: {', '.join(files)})")
    if name == "synthetic":
        return Path(data_root) / "synthetic" / files[split]
    return Path(data_root) / "dataset_extras" / files[split]


def dataset_image_root(data_root: Path, name: str) -> Path:
    """Folder that the ``imgname`` entries of dataset ``name`` are relative to."""
    if name.endswith("-val"):
        name = name[:-4]
    if name == "synthetic":
        return Path(data_root) / "synthetic"
    if name not in DATASET_FOLDERS:
        raise UnknownDatasetError(f"unknown dataset {name!r} (data.train_datasets / data.eval_dataset / --dataset); "
                                  f"known: {', '.join(sorted(DATASET_FOLDERS))}")
    return Path(data_root) / "datasets" / DATASET_FOLDERS[name]


def existing(data_root: Path, entry: DataFile) -> Path | None:
    """The first existing path among ``entry.rel`` and its alternatives, or None."""
    for rel in (entry.rel, *entry.alternatives):
        p = Path(data_root) / rel
        if p.exists():
            return p
    return None


def registry_markdown() -> str:
    """The registry as a Markdown table (path under the data root | needed by | where to get it), one row per
    external file, dataset file and image folder: the table of ``data/README.md`` (printed by
    ``python scripts/check_data.py --markdown``; a test keeps the two equal)."""
    def origin(name: str) -> str:  # 'h36m-p2-mosh' -> the 'h36m' entry
        return DATASET_ORIGINS.get(name) or DATASET_ORIGINS.get(name.split("-")[0], "see the README")

    rows = ["| path under the data root | needed by | where to get it |", "|---|---|---|"]
    for e in FILES.values():
        suffix = "/" if e.kind == "dir" else ""
        shown = " or ".join(f"`{r}{suffix}`" for r in (e.rel, *e.alternatives))
        rows.append(f"| {shown} | {', '.join(e.needed_by) or 'optional'} | {e.origin}"
                    f"{f' ({e.note})' if e.note else ''} |")
    for name, splits in DATASET_FILES.items():
        for split in splits:
            feature = "train" if split == "train" else f"eval-{name}"
            rows.append(f"| `{dataset_npz(Path(), name, split).as_posix()}` | {feature} | {origin(name)} |")
    for name, fname in DATASET_FILES_EFT.items():
        rows.append(f"| `dataset_extras/{fname}` | train (EFT setting) | {origin(name)} |")
    in_files = {e.rel for e in FILES.values()}
    for folder in dict.fromkeys(DATASET_FOLDERS.values()):
        if f"datasets/{folder}" in in_files:
            continue
        users = [n for n, f in DATASET_FOLDERS.items() if f == folder]
        rows.append(f"| `datasets/{folder}/` | images of {', '.join(users)} | {origin(users[0])} |")
    return "\n".join(rows) + "\n"
