"""Which body-model files to use: the real ones under the data root, or the built-in body model.

The real SMPL family is used when ``<data_root>/smpl/SMPL_NEUTRAL.(pkl|npz)`` exists. Otherwise the
built-in SMPL-format body model (``pymaf.body.builtin``) is generated once into the cache folder and
used instead (announced by ``resolve_body_files(..., announce=True)``); the same loaders read both,
nothing downstream knows the difference.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pymaf import paths

log = logging.getLogger("pymaf")


@dataclass(frozen=True)
class BodyFiles:
    """Every body-model-related file, in the real formats (see pymaf/paths.py for origins)."""
    root: Path
    smpl: dict[str, Path]          # 'neutral' | 'male' | 'female' -> SMPL_*.pkl or .npz
    mean_params: Path              # smpl_mean_params.npz
    j_regressor_extra: Path        # J_regressor_extra.npy [9, 6890]
    j_regressor_h36m: Path         # J_regressor_h36m.npy [17, 6890]
    mesh_downsampling: Path | None  # mesh_downsampling.npz, None -> the built-in IDX431 list
    uv_processed: Path             # UV_data/UV_Processed.mat
    vertex_texture: Path           # vertex_texture.npy
    cube_parts: Path               # cube_parts.npy
    builtin: bool


def _files_in(root: Path, builtin: bool) -> BodyFiles:
    def at(key: str) -> Path:
        return paths.existing(root, paths.FILES[key]) or root / paths.FILES[key].rel

    return BodyFiles(root, {g: at(f"smpl_{g}") for g in ("neutral", "male", "female")}, at("mean_params"),
                     at("j_regressor_extra"), at("j_regressor_h36m"),
                     paths.existing(root, paths.FILES["mesh_downsampling"]), at("uv_processed"),
                     at("vertex_texture"), at("cube_parts"), builtin)


def has_real_smpl(data_root: Path) -> bool:
    return paths.existing(Path(data_root), paths.FILES["smpl_neutral"]) is not None


def resolve_body_files(data_root: Path | str | None, announce: bool = True) -> BodyFiles:
    """Real files when the data root holds an SMPL neutral model, else the built-in body model (generated on
    first use). Nothing is cached: with ``announce`` the use of the built-in body model is logged, so a run
    resolves once with ``announce=True`` and passes ``announce=False`` (or the BodyFiles) everywhere else."""
    root = paths.resolve_data_root(data_root)
    if has_real_smpl(root):
        return _files_in(root, builtin=False)
    files = _files_in(builtin_root(), builtin=True)
    if announce:
        log.warning("using the built-in body model from %s (put the real SMPL files in <data_root>/smpl/ to use "
                    "them)", files.root)
    return files


def builtin_root(cache: Path | None = None) -> Path:
    """The folder of the generated built-in body model, generating it when its ``COMPLETE`` marker is missing
    (each file is written atomically and the marker last, so concurrent processes may generate it together)."""
    from pymaf.body import builtin  # generator code is only imported when needed

    target = Path(cache or paths.cache_dir()) / f"builtin-body-v{builtin.BUILTIN_VERSION}"
    if not (target / "COMPLETE").exists():
        log.warning("real SMPL files not found under the data root: generating the built-in body model in %s", target)
        builtin.write_builtin_body(target)
        paths.atomic_write(target / "COMPLETE", lambda f: f.write(b"ok\n"))
    return target
