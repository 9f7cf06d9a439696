#!/usr/bin/env python
"""Print the status of every external data file (spec §9) under the data root.

    python scripts/check_data.py [--data-root DIR] [--require model eval-3dpw ...]

Status is one of: present, missing, wrong shape, wrong content, unreadable. Exits with 1 when a file
that is present is wrong, or when a file needed by a feature named in ``--require`` is missing or wrong.
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymaf import paths  # noqa: E402
from pymaf.cli import add_debug_flag, run_cli  # noqa: E402


def _shape_ok(found: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    return len(found) == len(expected) and all(e in (-1, f) for f, e in zip(found, expected))


def _fmt(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join("*" if s == -1 else str(s) for s in shape) + ")"


def check_file(path: Path, entry: paths.DataFile) -> tuple[str, str]:
    """(status, detail) of one present file."""
    try:
        if entry.kind == "smpl":
            from pymaf.body.model_file import load_smpl_model
            load_smpl_model(path)
            return "present", ""
        if entry.kind == "npy":
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            expected = entry.shapes[""]
            if path.name == "J_regressor_extra.npy" and arr.shape == (14, 6890):
                return "wrong content", "14-row GraphCMR file; SPIN's 9-row file is needed (spec §10.22)"
            if not _shape_ok(arr.shape, expected):
                return "wrong shape", f"found {arr.shape}, expected {_fmt(expected)}"
            if path.name == "J_regressor_h36m.npy":
                sums = np.asarray(arr).sum(1)
                if not np.allclose(sums, 1.0, atol=1e-3):
                    return "wrong content", f"rows must sum to 1 (found {sums.min():.3f}..{sums.max():.3f})"
            return "present", ""
        if entry.kind == "npz":
            with np.load(path, allow_pickle=False) as z:
                for key, expected in entry.shapes.items():
                    if key not in z.files:
                        return "wrong content", f"key '{key}' missing (has {', '.join(z.files)})"
                    if not _shape_ok(z[key].shape, expected):
                        return "wrong shape", f"'{key}': found {z[key].shape}, expected {_fmt(expected)}"
            return "present", ""
        if entry.kind == "mat":
            from scipy.io import loadmat
            mat = loadmat(path)
            for key, expected in entry.shapes.items():
                if key not in mat:
                    return "wrong content", f"key '{key}' missing"
                shape = np.squeeze(mat[key]).shape if len(expected) == 1 else mat[key].shape
                if not _shape_ok(shape, expected):
                    return "wrong shape", f"'{key}': found {shape}, expected {_fmt(expected)}"
            return "present", ""
        if entry.kind == "mesh_downsampling":
            from pymaf.body.model_file import load_mesh_downsampling
            idx = load_mesh_downsampling(path)
            if idx.shape != (431,):
                return "wrong shape", f"D[1]@D[0] selects {idx.shape[0]} vertices, expected 431"
            return "present", ""
        if entry.kind == "torch":
            if not zipfile.is_zipfile(path) and path.stat().st_size < 1024:
                return "unreadable", "not a torch checkpoint"
            return "present", ""
        return "present", ""  # json, dir: existence is the check
    except Exception as exc:  # report, don't crash: this is a diagnostic tool
        return "unreadable", f"{type(exc).__name__}: {exc}"


def check_dataset(path: Path) -> tuple[str, str]:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("imgname", "center", "scale") if k not in z.files]
            if missing:
                return "wrong content", f"required keys missing: {', '.join(missing)}"
            n = len(z["imgname"])
            bad = [k for k in z.files if z[k].ndim and len(z[k]) != n]
            if bad:
                return "wrong shape", f"fields with a length other than len(imgname)={n}: {', '.join(bad)}"
            return "present", f"{n} samples"
    except Exception as exc:
        return "unreadable", f"{type(exc).__name__}: {exc}"


def check_fits(path: Path) -> tuple[str, str]:
    from pymaf.data.fits import load_final_fits
    try:
        return "present", f"{len(load_final_fits(path).valid)} fits"
    except Exception as exc:
        return "unreadable", f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=None, help="data root (default: $PYMAF_DATA or ./data)")
    ap.add_argument("--require", nargs="*", default=[], help="features whose files must be present and right")
    ap.add_argument("--markdown", action="store_true", help="print the registry as the Markdown table of "
                    "data/README.md and exit")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    if args.markdown:
        print(paths.registry_markdown(), end="")
        return 0
    root = paths.resolve_data_root(args.data_root)

    rows, failed = [], False
    for key, entry in paths.FILES.items():
        path = paths.existing(root, entry)
        status, detail = check_file(path, entry) if path is not None else ("missing", entry.note)
        needed = ", ".join(entry.needed_by) or "optional"
        wrong = status not in ("present", "missing")
        required = any(f in args.require for f in entry.needed_by)
        failed |= wrong or (required and status != "present")
        rows.append((entry.rel, status, needed, detail if status != "missing" else f"get: {entry.origin}" +
                     (f" ({detail})" if detail else "")))
    for rel, feature, origin in paths.dataset_files():
        path = root / rel
        check = check_fits if rel.startswith("final_fits/") else check_dataset
        status, detail = check(path) if path.exists() else ("missing", "")
        failed |= status not in ("present", "missing") or (feature in args.require and status != "present")
        rows.append((rel, status, feature, detail if status != "missing" else f"get: {origin}"))
    widths = [max(len(r[i]) for r in rows + [("file", "status", "needed by", "")]) for i in range(3)]
    print(f"data root: {root.resolve()}")
    print(f"{'file':<{widths[0]}}  {'status':<{widths[1]}}  {'needed by':<{widths[2]}}  details")
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    from pymaf.body.files import has_real_smpl
    if not has_real_smpl(root):
        print("\nno real SMPL model: the built-in body model (generated in the cache) will be used")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
