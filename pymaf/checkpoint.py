"""Load official PyMAF / SPIN checkpoints or our own; save our own atomically.

Accepted inputs (a path or an already-loaded object):

* the released ``PyMAF_model_checkpoint.pt``: a dict whose ``'model'`` holds the 441-entry official state dict
  (spec §7, Appendix B);
* SPIN's ``model_checkpoint.pt`` for the HMR baseline (``'model'`` with SPIN's flat names, mapped onto ours by
  :func:`own_names`);
* our files (``save_model_checkpoint``), or a bare state dict; a DDP ``module.`` prefix is stripped.

Every tensor of the model's state dict must be provided, and every entry of the file must be either used or
a *known* redundant entry of the official layout (spec §10.10-10.11), which is checked and skipped:

* ``regressor.k.smpl.*``: the per-regressor SMPL copies (arrays + unused placeholder parameters); our model has
  one shared, non-persistent SMPL layer built from the data root;
* ``maf_extractor.k.Dmap``: verified to select exactly our 431 vertex ids, then skipped (we index);
* ``points_grid``: verified equal to our 21×21 grid, then skipped (a non-persistent constant here);
* ``regressor.0.init_*`` are our ``init_*`` (:func:`own_names`); ``regressor.{1,2}.init_*`` are verified identical
  and skipped.

Anything else missing, unexpected or mis-shaped raises :class:`CheckpointError` listing the names.
"""
from __future__ import annotations

import logging
import os
import pickle
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pymaf.errors import CheckpointError, MissingFileError  # CheckpointError re-exported here
from pymaf.model.backbone import infer_backbone
from pymaf.model.hmr import HMR

log = logging.getLogger("pymaf")

FORMAT = "pymaf-checkpoint"
VERSION = 1

_SMPL = re.compile(r"^regressor\.(\d+)\.smpl\.")
_DMAP = re.compile(r"^maf_extractor\.(\d+)\.Dmap$")
_INIT = re.compile(r"^regressor\.(\d+)\.init_(pose|shape|cam)$")
# SPIN's flat HMR names: the first name component -> our HMR child that holds it
_SPIN_PARENT = {**{c: "feature_extractor" for c in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")},
                **{c: "regressor" for c in ("fc1", "fc2", "decpose", "decshape", "deccam")}}

@dataclass
class LoadReport:
    """What ``load_checkpoint`` did: ``source`` ('official-pymaf' | 'spin-hmr' | 'pymaf' | 'state-dict'),
    number of tensors ``loaded``, ``skipped`` (name -> reason) and free-text ``notes``."""
    source: str
    loaded: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"checkpoint ({self.source}): loaded {self.loaded} tensors, skipped {len(self.skipped)}"]
        groups = Counter(self.skipped.values())
        for reason, n in groups.items():
            names = [k for k, r in self.skipped.items() if r == reason]
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            lines.append(f"  skipped {n}: {reason} [{shown}]")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    __str__ = summary


def bare_network(model: nn.Module) -> nn.Module:
    """The underlying network of a DDP / torch.compile / ``pymaf.runtime.RuntimeModel`` wrapper (any nesting)."""
    while True:
        for attr in ("module", "_orig_mod"):
            inner = getattr(model, attr, None)
            if isinstance(inner, nn.Module):
                model = inner
                break
        else:
            return model


def load_error(path: str | os.PathLike, err: BaseException) -> CheckpointError:
    """A CheckpointError naming ``path`` and what is wrong with it, for an exception of ``torch.load``.
    Never suggests unpickling: a file that needs it is refused (nothing in it was executed)."""
    text = str(err)
    if isinstance(err, pickle.UnpicklingError) and "weights only load failed" in text.lower():
        found = re.search(r"GLOBAL ([\w.]+)", text)
        what = f" ({found.group(1)})" if found else ""
        return CheckpointError(f"checkpoint refused ({path}): it holds pickled Python objects{what} besides "
                               "tensors, which were not loaded nor executed; a pymaf or official PyMAF/SPIN "
                               "checkpoint holds only tensors and plain values: get the checkpoint again from its "
                               "original source")
    try:
        size = Path(path).stat().st_size
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        return CheckpointError(f"cannot read checkpoint {path}: {e.strerror or e}")
    if size == 0:
        return CheckpointError(f"checkpoint is empty ({path}, 0 bytes): the write was interrupted; use another copy")
    if head.startswith(b"PK"):
        return CheckpointError(f"checkpoint is truncated or corrupt ({path}, {size} bytes): its zip archive cannot "
                               "be read (cut short by an interrupted write, copy or download?); use another copy")
    return CheckpointError(f"not a PyTorch checkpoint ({path}, {size} bytes): expected a file written by "
                           f"torch.save ({type(err).__name__}: {text.splitlines()[0][:120] if text else 'unreadable'})")


def load_file(path: str | os.PathLike, map_location: Any = "cpu", trusted: bool = False) -> Any:
    """``torch.load(path, weights_only=not trusted)``; a missing file raises MissingFileError and an unreadable,
    truncated or malicious one a CheckpointError naming the file (:func:`load_error`)."""
    if not Path(path).is_file():
        raise MissingFileError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=not trusted)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name and what is wrong
        raise load_error(path, e) from e


def read_checkpoint(path_or_state: Any, trusted: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, the file's other entries) from a path or a loaded object; ``module.`` prefixes stripped.

    Files are read with ``torch.load(weights_only=True)`` (:func:`load_file`); ``trusted=True`` allows full
    unpickling (only for files you made yourself).
    """
    name = "<object>"
    obj = path_or_state
    if isinstance(path_or_state, (str, os.PathLike)):
        name = str(path_or_state)
        obj = load_file(name, "cpu", trusted=trusted)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{name}: expected a dict (with a 'model' state dict), got {type(obj).__name__}")
    if isinstance(obj.get("model"), dict):
        state, meta = obj["model"], {k: v for k, v in obj.items() if k != "model"}
    elif obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state, meta = obj, {}
    else:
        raise CheckpointError(f"{name}: no 'model' state dict (keys: {sorted(obj)[:10]})")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    meta.setdefault("_name", name)
    return dict(state), meta


def own_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict under our names: SPIN's flat HMR names (``conv1.weight``, ``layer1.0...``, ``fc1.weight``,
    ``decpose.*``) -> ``feature_extractor.conv1.weight``, ``regressor.fc1.weight``, ...; the official
    ``regressor.0.init_*`` -> ``init_*`` (unless the file has ``init_*`` too); every other name unchanged."""
    def rename(k: str) -> str:
        init = _INIT.match(k)
        if init and init.group(1) == "0" and f"init_{init.group(2)}" not in state:
            return f"init_{init.group(2)}"
        return f"{_SPIN_PARENT[k.split('.')[0]]}.{k}" if k.split(".")[0] in _SPIN_PARENT else k
    return {rename(k): v for k, v in state.items()}


def checkpoint_arch(state: dict[str, torch.Tensor], meta: dict[str, Any] | None = None) -> str:
    """'pymaf' or 'hmr', from our ``arch`` field or from the key set."""
    if meta and meta.get("format") == FORMAT and meta.get("arch") in ("pymaf", "hmr"):
        return meta["arch"]
    if "regressor.0.fc1.weight" in state:
        return "pymaf"
    if "regressor.fc1.weight" in own_names(state):
        return "hmr"
    raise CheckpointError(f"{(meta or {}).get('_name', '<object>')}: neither a PyMAF nor an HMR/SPIN state dict "
                          f"(first keys: {sorted(state)[:5]})")


def infer_model_config(state: dict[str, torch.Tensor], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """ModelConfig fields implied by a state dict (arch, n_iter, mlp_dim, deconv_*, aux_supv_on), the backbone (the
    trainer's saved ``config`` names it, else it is recognised from the keys); maf_last_slope, input_res: saved only."""
    arch = checkpoint_arch(state, meta)
    saved = (meta or {}).get("config")
    saved = (saved.get("model") or {}) if isinstance(saved, dict) else {}   # what the weights cannot tell
    backbone = saved.get("backbone") or infer_backbone(own_names(state))
    found = {"arch": arch, **({"backbone": backbone} if backbone else {}),
             **{k: saved[k] for k in ("maf_last_slope", "input_res") if k in saved}}
    if arch == "hmr":
        return found
    n_iter = sum(1 for k in state if re.fullmatch(r"regressor\.\d+\.fc1\.weight", k))
    mlp, i = [], 0
    while f"maf_extractor.0.conv{i}.weight" in state:
        w = state[f"maf_extractor.0.conv{i}.weight"]
        mlp += [w.shape[1]] if i == 0 else []
        mlp.append(w.shape[0])
        i += 1
    deconv = [state[k] for k in sorted((k for k in state if re.fullmatch(r"deconv_layers\.\d+\.weight", k)
                                        and state[k].dim() == 4), key=lambda k: int(k.split(".")[1]))]
    return {**found, "n_iter": n_iter, "mlp_dim": mlp,
            "deconv_filters": [w.shape[1] for w in deconv], "deconv_kernels": [w.shape[2] for w in deconv],
            "aux_supv_on": "dp_head.predict_u.weight" in state}


def _check_dmap(name: str, dmap: torch.Tensor, model: nn.Module) -> None:
    ids = getattr(model, "vertex_ids", None)
    if ids is None:
        raise CheckpointError(f"{name}: the model has no down-sampled vertex ids to compare with")
    d = dmap.detach().float()
    ok = d.dim() == 2 and d.shape[0] == len(ids)
    if ok:
        col = d.argmax(dim=1)
        ok = bool(((d != 0).sum(dim=1) == 1).all() and (d.gather(1, col[:, None]) == 1).all()
                  and torch.equal(col.cpu(), ids.cpu()))
    if not ok:
        raise CheckpointError(f"{name} (shape {tuple(d.shape)}) does not select the model's {len(ids)} vertex ids "
                              "(Appendix A / mesh_downsampling.npz): the features would be sampled elsewhere")


def _compare_note(state: dict[str, torch.Tensor], key: str, ours: torch.Tensor | None, what: str) -> str | None:
    if key not in state or ours is None or tuple(state[key].shape) != tuple(ours.shape):
        return None
    diff = (state[key].float().cpu() - ours.float().cpu()).abs().max().item()
    if diff > 1e-5:
        return (f"{key} differs from the loaded body model's {what} (max |diff| {diff:.3g}): the checkpoint was "
                "trained with another SMPL/regressor file than the data root's (built-in body model?)")
    return None


def load_checkpoint(model: nn.Module, path_or_state: Any, trusted: bool = False) -> LoadReport:
    """Load a checkpoint into ``model`` (PyMAF or HMR, possibly wrapped); returns a :class:`LoadReport`.

    Raises CheckpointError naming every missing, unexpected or mis-shaped entry, and when a redundant official
    entry (Dmap, points_grid, regressor.k.init_*) disagrees with the model.
    """
    net = bare_network(model)
    state, meta = read_checkpoint(path_or_state, trusted)
    own = net.state_dict()
    try:
        file_arch = checkpoint_arch(state, meta)
    except CheckpointError:
        file_arch = None                       # unknown layout: the name lists below say what is wrong
    model_arch = "hmr" if isinstance(net, HMR) else "pymaf"
    if file_arch is not None and file_arch != model_arch:
        raise CheckpointError(f"{meta['_name']} holds a '{file_arch}' network but the model is '{model_arch}' "
                              f"(build it with model.arch='{file_arch}', or let pymaf.load_model infer it)")
    official = any(_SMPL.match(k) or _DMAP.match(k) for k in state) or "points_grid" in state
    spin = "conv1.weight" in state and "fc1.weight" in state
    report = LoadReport("pymaf" if meta.get("format") == FORMAT else "official-pymaf" if official
                        else "spin-hmr" if spin else "state-dict")
    state = own_names(state)
    use: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, value in state.items():
        init = _INIT.match(key)
        if key in own:
            use[key] = value
        elif _SMPL.match(key):
            report.skipped[key] = "official per-regressor SMPL copy / unused placeholder parameter (§10.10)"
        elif _DMAP.match(key) and hasattr(net, "maf_extractor"):
            _check_dmap(key, value, net)
            report.skipped[key] = "official dense Dmap, verified to select our 431 vertex ids (§10.11)"
        elif key == "points_grid" and hasattr(net, "points_grid"):
            if tuple(value.shape) != tuple(net.points_grid.shape) or \
                    not torch.allclose(value.float().cpu(), net.points_grid.float().cpu(), atol=1e-6):
                raise CheckpointError("points_grid in the checkpoint differs from the model's 21x21 'ij' grid (§1.4)")
            report.skipped[key] = "official points_grid, verified equal to our constant grid (§1.4)"
        elif init and init.group(1) != "0" and f"init_{init.group(2)}" in own:
            first = f"init_{init.group(2)}"
            if first in state and not torch.equal(value, state[first]):
                raise CheckpointError(f"{key} differs from regressor.0.{first}: cannot map the official "
                                      "per-regressor mean parameters onto one init_* buffer")
            report.skipped[key] = "official copy of regressor.0.init_* (unused by the official forward)"
        else:
            unexpected.append(key)
    missing = sorted(set(own) - set(use))
    bad = sorted(f"{k} (model {tuple(own[k].shape)}, file {tuple(use[k].shape)})" for k in use
                 if tuple(own[k].shape) != tuple(use[k].shape))
    if missing or unexpected or bad:
        parts = [f"{len(missing)} missing: {missing}" if missing else "",
                 f"{len(unexpected)} unexpected: {sorted(unexpected)}" if unexpected else "",
                 f"{len(bad)} wrong shape: {bad}" if bad else ""]
        raise CheckpointError(f"{meta['_name']} ({report.source}) does not match {type(net).__name__}: "
                              + "; ".join(p for p in parts if p))
    net.load_state_dict(use, strict=True)
    report.loaded = len(use)
    smpl = getattr(net, "smpl", None)
    for key, what in (("regressor.0.smpl.v_template", "v_template"),
                      ("regressor.0.smpl.J_regressor_extra", "J_regressor_extra")):
        note = _compare_note(state, key, getattr(smpl, what, None), what)
        if note:
            report.notes.append(note)
    log.info("%s", report.summary())
    for note in report.notes:
        log.warning("checkpoint: %s", note)
    return report


# The temporary files of atomic_save: ".<target name>.<random>.tmp" (tempfile.mkstemp), e.g. ".latest.pt.k2j9.tmp".
_TMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


def _payload_bytes(obj: Any) -> int:
    """Approximate size of what torch.save writes: the bytes of every tensor in nested dicts/lists."""
    if torch.is_tensor(obj):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_payload_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_payload_bytes(v) for v in obj)
    return 0


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temporary file in the same folder, fsync, then os.replace: a reader never sees a
    half-written checkpoint and a crash mid-write leaves the previous file intact. A folder that cannot be
    written (read-only, full disk) raises :class:`pymaf.errors.WriteError` naming the file and the size."""
    from pymaf.paths import atomic_write  # the one atomic writer
    need = f"a checkpoint needs ~{max(1, round(_payload_bytes(obj) / 2**20))} MB"
    return atomic_write(path, lambda f: torch.save(obj, f), need)


def remove_stale_tmp(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that an interrupted :func:`atomic_save` left in ``folder`` (a kill during a
    checkpoint write); logs each one. Call it once at the start of a run, in the one process that writes."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and _TMP_NAME.match(p.name):
            size = p.stat().st_size
            p.unlink()
            removed.append(p)
            log.warning("removed %s (%.1f MB): a temporary file left by an interrupted checkpoint write", p,
                        size / 2**20)
    return removed


def save_model_checkpoint(path: str | os.PathLike, model: nn.Module, extra: dict[str, Any] | None = None) -> None:
    """Write ``{'format', 'version', 'arch', 'model': state_dict, **extra}`` atomically (temp file in the same
    folder, fsync, ``os.replace``). The state dict holds no SMPL arrays (they are non-persistent buffers).
    ``extra``: anything torch.save can store with weights_only loading (optimizer state, step, config dict)."""
    net = bare_network(model)
    extra = dict(extra or {})
    clash = sorted({"format", "version", "arch", "model"} & set(extra))
    if clash:
        raise ValueError(f"save_model_checkpoint: extra must not use the reserved keys {clash}")
    payload = {"format": FORMAT, "version": VERSION, "arch": "hmr" if isinstance(net, HMR) else "pymaf",
               "model": net.state_dict(), **extra}
    atomic_save(payload, path)
