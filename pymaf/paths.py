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
    "pymaf_checkpoint": DataFile("pretrained_model/PyMAF_model_checkpoint.pt", "torch",
                                 "PyMAF authors' release (Google Drive link in the official README)", ()),
    "coco_val_annotations": DataFile("datasets/coco/annotations/person_keypoints_val2014.json", "json",
                                     "cocodataset.org 2014 annotations", (EVAL_COCO,)),
    "upi_s1h": DataFile("datasets/upi-s1h", "dir", "UP project (UPi-S1h segmentation PNGs of LSP test)", (EVAL_LSP,)),
}
# torchvision's ImageNet V1 weights of each ResNet depth (old and new file name of the same weights), optional.
FILES.update({f"resnet{d}_imagenet": DataFile(
    f"pretrained_model/resnet{d}-{old}.pth", "torch", f"torchvision model zoo (ResNet-{d} V1)", (),
    alternatives=(f"pretrained_model/resnet{d}-{new}.pth",), note="optional: also found in the torch hub cache")
    for d, old, new in ((18, "5c106cde", "f37072fd"), (34, "333f7ec4", "b627a593"), (50, "19c8e357", "0676ba61"),
                        (101, "5d3b4d8f", "63fe2227"), (152, "b121ed2d", "394f9c45"))})


@dataclass(frozen=True)
class Dataset:
    """One dataset, everything the package knows about it; paths are relative to the data root (spec §4.6)."""
    origin: str
    images: str               # the folder its ``imgname`` entries are relative to
    train: str = ""           # SPIN-format training npz ('' = no training split)
    eval: str = ""            # SPIN-format evaluation npz ('' = no evaluation split)
    eft: str = ""             # the EFT setting's training npz (spec §4.6, HEAD; the 'eft' mixture preset)
    fits: str = ""            # SPIN final fits of the training split (spec §3.4, ``data.use_fits``)
    protocol: str = ""        # key of ``pymaf.eval.pose3d.POSE3D_PROTOCOLS`` that scores the evaluation split
    group: str = ""           # mixture group (spec §4.5): 'h36m' | 'itw' (in the wild) | 'mpi'
    presets: tuple[str, ...] = ()  # mixture presets (``pymaf.data.mixed.MIX_RATIOS``) that train on it


_X, _H36M = "dataset_extras/", "Human3.6M (vision.imar.ro) + SPIN dataset_extras / PyMAF MoSh files (on request)"
_COCO, _MPI = "COCO 2014 + PyMAF/SPIN dataset_extras", "MPI-INF-3DHP + SPIN dataset_extras"
BOTH = ("spin", "eft")
# The one dataset registry (names of data.train_datasets, data.eval_dataset, --dataset); its order is the order
# of the mixture's datasets. 'NAME-val' names the evaluation split of NAME (e.g. 'synthetic-val').
DATASETS: dict[str, Dataset] = {
    "h36m": Dataset(_H36M, "datasets/h36m", train=_X + "h36m_train.npz", eft=_X + "h36m_mosh_train.npz",
                    fits="final_fits/h36m.npy", group="h36m", presets=BOTH),
    "h36m-p1": Dataset(_H36M, "datasets/h36m", eval=_X + "h36m_valid_protocol1_newpath.npz", protocol="h36m-p1"),
    "h36m-p2": Dataset(_H36M, "datasets/h36m", eval=_X + "h36m_valid_protocol2_newpath.npz", protocol="h36m-p2"),
    "h36m-p2-mosh": Dataset(_H36M, "datasets/h36m", eval=_X + "h36m_mosh_valid_p2.npz", protocol="h36m-p2-mosh"),
    "lsp-orig": Dataset("LSP original + SPIN dataset_extras", "datasets/lsp_original",
                        train=_X + "lsp_dataset_original_train.npz", fits="final_fits/lsp-orig.npz", group="itw",
                        presets=BOTH),
    "mpii": Dataset("MPII Human Pose + SPIN dataset_extras", "datasets/mpii", train=_X + "mpii_train.npz",
                    eft=_X + "mpii_train_eft.npz", fits="final_fits/mpii.npz", group="itw", presets=BOTH),
    "lspet": Dataset("LSP-extended (high-res) + SPIN dataset_extras", "datasets/hr-lspet",
                     train=_X + "hr-lspet_train.npz", eft=_X + "hr-lspet_train_eft.npz", fits="final_fits/lspet.npz",
                     group="itw", presets=BOTH),
    "coco": Dataset(_COCO, "datasets/coco", train=_X + "coco_2014_train.npz", eval=_X + "coco_2014_val.npz",
                    eft=_X + "coco_2014_train_eft.npz", fits="final_fits/coco.npz", group="itw", presets=("spin",)),
    "coco-full": Dataset("COCO 2014 + PyMAF EFT files", "datasets/coco", train=_X + "coco-full_train_eft.npz",
                         eft=_X + "coco-full_train_eft.npz", group="itw", presets=("eft",)),
    "mpi-inf-3dhp": Dataset(_MPI, "datasets/mpi_inf_3dhp", train=_X + "mpi_inf_3dhp_train.npz",
                            eval=_X + "mpi_inf_3dhp_test.npz", fits="final_fits/mpi-inf-3dhp.npz",
                            protocol="mpi-inf-3dhp", group="mpi", presets=BOTH),
    "lsp": Dataset("LSP (sam.johnson.io) + SPIN dataset_extras", "datasets/lsp", eval=_X + "lsp_dataset_test.npz"),
    "3dpw": Dataset("3DPW (virtualhumans.mpi-inf.mpg.de) + SPIN dataset_extras", "datasets/3dpw",
                    train=_X + "3dpw_train.npz", eval=_X + "3dpw_test.npz", protocol="3dpw"),
    "synthetic": Dataset("generated by scripts/make_synthetic.py (built-in body model)", "synthetic",
                         train="synthetic/synthetic_train.npz", eval="synthetic/synthetic_val.npz",
                         protocol="synthetic-val"),
    "upi-s1h": Dataset(FILES["upi_s1h"].origin, FILES["upi_s1h"].rel),  # LSP test masks (``mask_root``)
}


def dataset(name: str) -> Dataset:
    """The registry entry of ``name`` ('NAME-val' is NAME), or an :class:`UnknownDatasetError` listing the names."""
    entry = DATASETS.get(name.removesuffix("-val"))
    if entry is None:
        raise UnknownDatasetError(f"unknown dataset {name!r} (data.train_datasets / data.eval_dataset / --dataset); "
                                  f"known: {', '.join(sorted(DATASETS))}")
    return entry


def dataset_npz(data_root: Path, name: str, split: str) -> Path:
    """The SPIN-format npz of dataset ``name`` for ``split`` ('train', 'eval' or 'eft'); 'NAME-val' is NAME's
    evaluation split whatever ``split``."""
    entry, split = dataset(name), "eval" if name.endswith("-val") else split
    rel = getattr(entry, split, "") if split in ("train", "eval", "eft") else ""
    if not rel:
        have = [s for s in ("train", "eval", "eft") if getattr(entry, s)]
        raise UnknownDatasetError(f"dataset {name!r} has no {split!r} split (it has: {', '.join(have) or 'none'})")
    return Path(data_root) / rel


def dataset_image_root(data_root: Path, name: str) -> Path:
    """Folder that the ``imgname`` entries of dataset ``name`` are relative to."""
    return Path(data_root) / dataset(name).images


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
    rows = ["| path under the data root | needed by | where to get it |", "|---|---|---|"]
    for e in FILES.values():
        suffix = "/" if e.kind == "dir" else ""
        shown = " or ".join(f"`{r}{suffix}`" for r in (e.rel, *e.alternatives))
        rows.append(f"| {shown} | {', '.join(e.needed_by) or 'optional'} | {e.origin}"
                    f"{f' ({e.note})' if e.note else ''} |")
    rows += [f"| `{rel}` | {feature} | {origin} |" for rel, feature, origin in dataset_files()]
    in_files, folders = {e.rel for e in FILES.values()}, {}
    for name, d in DATASETS.items():
        folders.setdefault(d.images, []).append(name)
    rows += [f"| `{folder}/` | images of {', '.join(users)} | {DATASETS[users[0]].origin} |"
             for folder, users in folders.items() if folder not in in_files]
    return "\n".join(rows) + "\n"


def dataset_files() -> list[tuple[str, str, str]]:
    """(path under the data root, feature that needs it, where to get it) of every registered dataset file."""
    out = []
    for name, d in DATASETS.items():
        out += [(d.train, "train", d.origin)] if d.train else []
        out += [(d.eval, f"eval-{name}", d.origin)] if d.eval else []
        out += [(d.eft, "train (EFT setting)", d.origin)] if d.eft and d.eft != d.train else []
        out += [(d.fits, "train (data.use_fits)", "SPIN spin_fits.tar.gz (fetch_data.sh)")] if d.fits else []
    return out
