"""Mixed training data (spec §4.5) with ratios that hold in every batch (fixes §10.19).

The official ``MixedDataset`` draws the dataset of each *sample* at random, so ratios hold only in expectation,
and its epoch is the largest dataset's length. Here a ``MixedDataset`` only concatenates the datasets, and the
``MixedBatchSampler`` decides every batch's composition:

- per-batch counts: ``floor(r_d B)`` samples of dataset d plus one of the ``B - sum floor(r_d B)`` leftover slots,
  given by largest remainder with the remainders carried from batch to batch. Every batch therefore holds each
  dataset ``floor(r_d B)`` or ``ceil(r_d B)`` times, and over an epoch the counts match the ratios within one sample;
- within a dataset, samples come from a shuffled permutation that runs on across epochs (reshuffled per pass);
- an explicit epoch length (``batches_per_epoch``); everything is a pure function of (seed, epoch, batch), so
  ``state_dict``/``load_state_dict`` resume exactly; DDP ranks interleave the same permutations (disjoint samples,
  same per-batch counts on every rank);
- each yielded key is ``(flat_index, augmentation_seed)`` so augmentation is reproducible whatever the workers.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from torch.utils.data import Dataset, Sampler

from pymaf import paths
from pymaf.data.dataset import BaseDataset, build_dataset

log = logging.getLogger("pymaf")

# Named presets (§4.5): a ratio per group; a group's datasets (``paths.DATASETS``: ``group``, ``presets``, in
# registry order) split the group's ratio by their sizes.
MIX_RATIOS: dict[str, dict[str, float]] = {
    "spin": {"h36m": 0.3, "itw": 0.6, "mpi": 0.1},  # conference / SPIN setting [P0] (the released checkpoint)
    "eft": {"h36m": 0.5, "itw": 0.3, "mpi": 0.2},   # EFT setting (HEAD), in-the-wild with coco-full
}
PARTITIONS: dict[str, list[tuple[tuple[str, ...], float]]] = {
    preset: [(tuple(n for n, d in paths.DATASETS.items() if d.group == group and preset in d.presets), ratio)
             for group, ratio in ratios.items()] for preset, ratios in MIX_RATIOS.items()}


def partition_ratios(partition: str | Sequence[tuple[Sequence[str], float]], sizes: dict[str, int]) -> dict[str, float]:
    """Per-dataset ratios of a preset name or an explicit [(names, group_ratio), ...] list, given dataset sizes."""
    groups = PARTITIONS[partition] if isinstance(partition, str) else partition
    out: dict[str, float] = {}
    for names, ratio in groups:
        missing = [n for n in names if n not in sizes]
        if missing:
            raise KeyError(f"partition needs the size of dataset(s) {missing}; got sizes for {sorted(sizes)}")
        total = sum(sizes[n] for n in names)
        for n in names:
            out[n] = ratio * sizes[n] / total if total else 0.0
    return out


def batch_counts(ratios: Sequence[float], batch_size: int, num_batches: int) -> np.ndarray:
    """int64 [num_batches, D]: samples of each dataset in each batch (largest remainder, remainders carried)."""
    r = np.asarray(ratios, np.float64)
    if (r < 0).any() or r.sum() <= 0:
        raise ValueError(f"ratios must be non-negative with a positive sum, got {list(ratios)}")
    quota = r / r.sum() * batch_size
    base = np.floor(quota + 1e-9).astype(np.int64)
    frac = np.clip(quota - base, 0.0, None)
    leftover = int(batch_size - base.sum())
    counts = np.tile(base, (num_batches, 1))
    credit = np.zeros(len(r))
    for b in range(num_batches if leftover else 0):
        credit += frac
        winners = np.argsort(-credit, kind="stable")[:leftover]
        counts[b, winners] += 1
        credit[winners] -= 1.0
    return counts


class MixedDataset(Dataset):
    """Concatenation of datasets; key = flat index or (flat index, augmentation seed)."""

    def __init__(self, datasets: Sequence[Dataset], names: Sequence[str] | None = None):
        if not datasets:
            raise ValueError("MixedDataset needs at least one dataset")
        self.datasets = list(datasets)
        self.names = list(names) if names is not None else [getattr(d, "dataset_name", str(i))
                                                            for i, d in enumerate(datasets)]
        self.sizes = [len(d) for d in self.datasets]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, flat: int) -> tuple[int, int]:
        """(dataset number, index inside it) of a flat index."""
        d = int(np.searchsorted(self.offsets, flat, side="right") - 1)
        return d, int(flat - self.offsets[d])

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        flat, seed = (key[0], key[1]) if isinstance(key, (tuple, list)) else (key, None)
        d, i = self.locate(int(flat))
        return self.datasets[d][(i, seed) if seed is not None else i]

    @property
    def num_skipped(self) -> int:
        return sum(getattr(d, "num_skipped", 0) for d in self.datasets)


class MixedBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``batch_size`` keys for a ``MixedDataset`` (or any dataset: one size, ratio 1).

    sizes/ratios: per dataset, in the MixedDataset order. batches_per_epoch: None -> max(sizes) // (B * world)
    (the official epoch of one pass over the largest dataset). rank/world_size: DDP split (per-rank batch size).
    """

    def __init__(self, sizes: Sequence[int], ratios: Sequence[float], batch_size: int,
                 batches_per_epoch: int | None = None, seed: int = 0, rank: int = 0, world_size: int = 1):
        if len(sizes) != len(ratios):
            raise ValueError(f"{len(sizes)} dataset sizes but {len(ratios)} ratios")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} not in [0, {world_size})")
        if any(s <= 0 and r > 0 for s, r in zip(sizes, ratios)):
            raise ValueError(f"a dataset with a positive ratio is empty: sizes {list(sizes)}, ratios {list(ratios)}")
        self.sizes = [int(s) for s in sizes]
        self.ratios = [float(r) for r in ratios]
        self.batch_size = int(batch_size)
        self.world_size, self.rank, self.seed = int(world_size), int(rank), int(seed)
        self.batches_per_epoch = int(batches_per_epoch if batches_per_epoch is not None
                                     else max(1, max(self.sizes) // (self.batch_size * self.world_size)))
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.counts = batch_counts(self.ratios, self.batch_size, self.batches_per_epoch)  # same every epoch
        self.epoch = 0
        self._start = 0      # first batch of the current epoch to yield (resume)
        self._yielded = 0    # batches of the current epoch handed out so far

    def __len__(self) -> int:
        return self.batches_per_epoch - self._start

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._start, self._yielded = int(epoch), 0, 0

    def _draws(self, d: int, epoch: int) -> np.ndarray:
        """Local indices of dataset d drawn by this rank in ``epoch``, in draw order."""
        per_epoch = int(self.counts[:, d].sum())
        n = self.sizes[d]
        pos = (epoch * per_epoch + np.arange(per_epoch, dtype=np.int64)) * self.world_size + self.rank
        cycles, within = np.divmod(pos, n)  # pass over the dataset, position in that pass's permutation
        first = int(cycles[0])  # per_epoch > 0: epoch_plan skips datasets that are never drawn
        perms = np.stack([np.random.default_rng([self.seed, d, c]).permutation(n)
                          for c in range(first, int(cycles[-1]) + 1)])
        return perms[cycles - first, within]

    def epoch_plan(self, epoch: int) -> np.ndarray:
        """int64 [batches_per_epoch, batch_size]: flat indices of every batch of ``epoch`` for this rank."""
        nb, bs = self.batches_per_epoch, self.batch_size
        plan = np.empty((nb, bs), np.int64)
        starts = np.concatenate([np.zeros((nb, 1), np.int64), np.cumsum(self.counts, axis=1)], axis=1)
        for d in range(len(self.sizes)):
            if self.counts[:, d].sum() == 0:
                continue
            draws = self._draws(d, epoch) + self.offsets[d]
            slots = np.arange(bs)[None, :]
            slot_mask = (slots >= starts[:, d:d + 1]) & (slots < starts[:, d + 1:d + 2])
            plan[slot_mask] = draws  # row-major order of the mask == draw order
        return plan

    def _aug_seed(self, epoch: int, batch: int, slot: int) -> int:
        draw = ((epoch * self.batches_per_epoch + batch) * self.world_size + self.rank) * self.batch_size + slot
        return self.seed * (1 << 48) + draw

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, plan = self.epoch, self.epoch_plan(self.epoch)
        for b in range(self._start, self.batches_per_epoch):
            self._yielded = b + 1
            yield [(int(i), self._aug_seed(epoch, b, s)) for s, i in enumerate(plan[b])]
        self.epoch, self._start, self._yielded = epoch + 1, 0, 0

    def state_dict(self, batches_done: int | None = None) -> dict[str, Any]:
        """Position to resume from. A DataLoader runs ahead of the trainer (prefetching), so pass the number of
        batches of the current epoch the trainer has actually consumed as ``batches_done``."""
        return {"epoch": self.epoch, "batch": self._yielded if batches_done is None else int(batches_done),
                "seed": self.seed, "sizes": self.sizes, "ratios": self.ratios, "batch_size": self.batch_size,
                "batches_per_epoch": self.batches_per_epoch, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("seed", "sizes", "ratios", "batch_size", "batches_per_epoch", "world_size"):
            mine = getattr(self, key)
            theirs = list(state[key]) if isinstance(mine, list) else state[key]
            if theirs != mine:
                raise ValueError(f"sampler state mismatch for '{key}': saved {theirs}, current {mine}")
        batch = min(int(state["batch"]), self.batches_per_epoch)  # a finished epoch yields nothing more
        self.epoch, self._start, self._yielded = int(state["epoch"]), batch, batch


def final_fits_path(data_root: Path | str, name: str) -> Path | None:
    """SPIN's final fits of training set ``name`` (§3.4): the file the registry names (``paths.DATASETS``), else
    ``final_fits/<name>.npz``; None (with a warning that names the file) when it is not there."""
    fit = Path(data_root) / (paths.dataset(name).fits or f"final_fits/{name}.npz")
    if fit.exists():
        return fit
    log.warning("no SPIN final fits for %s at %s: using the dataset's own SMPL labels", name, fit)
    return None


def build_mixed_dataset(data_root: Path | str, partition: str = "spin", *, use_fits: bool | None = None,
                        **dataset_kwargs: Any) -> tuple[MixedDataset, list[float]]:
    """The training mixture of a preset: (MixedDataset, per-dataset ratios in its order).

    'spin' reads the SPIN training files and, when ``use_fits`` (default True for 'spin'), the SPIN final fits
    (``paths.DATASETS[name].fits``) where present (§3.4); 'eft' reads the EFT files.
    Other keyword arguments go to every ``BaseDataset``.
    """
    root = Path(data_root)
    use_fits = (partition == "spin") if use_fits is None else use_fits
    names = [n for group, _ in PARTITIONS[partition] for n in group]
    datasets: list[BaseDataset] = []
    for name in names:
        kwargs = dict(dataset_kwargs)
        if use_fits:
            kwargs["fits_path"] = final_fits_path(root, name)
        datasets.append(build_dataset(root, name, "train", eft=(partition == "eft"), **kwargs))
    mixed = MixedDataset(datasets, names)
    ratios = partition_ratios(partition, dict(zip(names, mixed.sizes)))
    log.info("mixed dataset '%s': %s", partition,
             ", ".join(f"{n} {s} samples x{ratios[n]:.3f}" for n, s in zip(names, mixed.sizes)))
    return mixed, [ratios[n] for n in names]
