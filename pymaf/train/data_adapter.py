"""The trainer's view of ``pymaf.data``: train/eval loaders, epoch iteration from a position, sampler state.

Batch order of an epoch depends only on (seed, epoch, rank); every sample carries its own augmentation seed
(``BaseDataset[(index, seed)]``), so batches do not depend on the number of workers and a resumed run can
skip straight to its position in the epoch without loading the skipped samples.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader

from pymaf.config import Config


def _try(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def ensure_synthetic(cfg: Config, data_root: Path) -> None:
    """Generate the built-in synthetic dataset under ``data_root`` when a configured dataset needs it."""
    names = set(cfg.data.train_datasets) if not cfg.data.mix_preset else set()
    names.add(cfg.data.eval_dataset.removesuffix("-val"))
    if "synthetic" not in names:
        return
    root = Path(data_root) / "synthetic"
    if (root / "synthetic_train.npz").is_file() and (root / "synthetic_val.npz").is_file():
        return
    gen = _try("pymaf.data.synthetic", "generate_synthetic_dataset") or _try("pymaf.data.synthetic", "make_synthetic")
    if gen is None:
        raise RuntimeError(f"synthetic dataset missing under {root} and pymaf.data.synthetic has no generator; "
                           "run scripts/make_synthetic.py --data-root <data_root>")
    print(f"generating the built-in synthetic dataset in {root} (once) ...", flush=True)
    gen(data_root, num_train=cfg.data.synthetic_num_train, num_val=cfg.data.synthetic_num_val,
        seed=cfg.data.synthetic_seed)


def train_loader(cfg: Config, data_root: Path, info: Any) -> tuple[DataLoader, Any]:
    """(DataLoader, MixedBatchSampler) of the configured training mixture for this rank (§4.5)."""
    from pymaf.data.dataset import build_dataset
    from pymaf.data.mixed import MixedBatchSampler, MixedDataset, build_mixed_dataset
    d = cfg.data
    kw: dict[str, Any] = dict(use_augmentation=d.use_augmentation, crop_backend=d.crop_backend,
                              skip_missing=d.skip_missing_images)
    aug = _augment_config(cfg)
    if aug is not None:
        kw["augment"] = aug
    if d.mix_preset:
        ds, ratios = build_mixed_dataset(data_root, d.mix_preset, use_fits=d.use_fits, **kw)
    else:
        names = list(d.train_datasets)
        ds = MixedDataset([build_dataset(data_root, n, "train", **kw) for n in names], names)
        ratios = [d.train_datasets[n] for n in names]
    sampler = MixedBatchSampler(ds.sizes, ratios, cfg.train.batch_size,
                                batches_per_epoch=cfg.train.epoch_length or None, seed=cfg.train.seed,
                                rank=info.rank, world_size=info.world_size)
    cuda = cfg.runtime.device.startswith("cuda")
    from pymaf.data.loader import worker_init
    w = d.num_workers
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=w, generator=torch.Generator(), pin_memory=cuda,
                        persistent_workers=w > 0, prefetch_factor=4 if w > 0 else None,
                        worker_init_fn=worker_init if w > 0 else None)
    return loader, sampler


def _augment_config(cfg: Config) -> Any:
    try:
        from pymaf.data.augment import AugmentConfig
        import dataclasses
        names = {f.name for f in dataclasses.fields(AugmentConfig)}
        vals = {k: getattr(cfg.data, k) for k in ("flip_prob", "noise_factor", "rot_factor", "rot_prob",
                                                   "scale_factor") if k in names}
        return AugmentConfig(**vals)
    except Exception:  # noqa: BLE001 - keep the dataset's defaults if the field names differ
        return None


def epoch_length(batch_sampler: Any) -> int:
    return int(getattr(batch_sampler, "batches_per_epoch", None) or len(batch_sampler))


def iterate_epoch(loader: DataLoader, batch_sampler: Any, cfg: Config, epoch: int,
                  start_batch: int) -> Iterator[dict[str, Any]]:
    """Batches of ``epoch`` from batch ``start_batch`` on. The loader's private generator is re-seeded so that
    creating the iterator draws nothing from the global RNG (exact resume)."""
    batch_sampler.set_epoch(epoch)
    batch_sampler.load_state_dict(batch_sampler.state_dict(batches_done=start_batch))
    if loader.generator is not None:
        loader.generator.manual_seed(cfg.train.seed * 100003 + epoch)
    for batch in loader:
        yield batch


def sampler_state(batch_sampler: Any, epoch: int, batch_in_epoch: int) -> dict[str, Any]:
    return {**batch_sampler.state_dict(batches_done=batch_in_epoch), "epoch": epoch}


def eval_loader(cfg: Config, data_root: Path) -> DataLoader:
    from pymaf.data.dataset import build_dataset
    ds = build_dataset(data_root, cfg.data.eval_dataset, "eval", crop_backend=cfg.data.crop_backend)
    return DataLoader(ds, batch_size=cfg.eval.batch_size, shuffle=False, num_workers=cfg.eval.num_workers,
                      generator=torch.Generator().manual_seed(0))


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    nb = device.type == "cuda"
    return {k: v.to(device, non_blocking=nb) if torch.is_tensor(v) else v for k, v in batch.items()}
