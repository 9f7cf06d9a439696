"""The mixed dataset: exact per-batch ratios (spec §10.19), determinism, exact resume, DDP split."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from pymaf.data.dataset import BaseDataset
from pymaf.data.loader import build_loader
from pymaf.data.mixed import PARTITIONS, MixedBatchSampler, MixedDataset, batch_counts, partition_ratios
from pymaf.data.spin_npz import save_spin_npz

# SPIN-setting sizes (roughly the real ones) and ratios
SIZES = {"h36m": 312188, "lsp-orig": 1000, "mpii": 14810, "lspet": 9428, "coco": 28344, "mpi-inf-3dhp": 96507}


@pytest.mark.parametrize("preset", sorted(PARTITIONS))
def test_partition_presets(preset):
    sizes = dict(SIZES, **{"coco-full": 74834})
    r = partition_ratios(preset, sizes)
    assert math.isclose(sum(r.values()), 1.0)
    h36m, mpi = {"spin": (0.3, 0.1), "eft": (0.5, 0.2)}[preset]
    assert math.isclose(r["h36m"], h36m) and math.isclose(r["mpi-inf-3dhp"], mpi)
    assert math.isclose(r["mpii"] / r["lspet"], SIZES["mpii"] / SIZES["lspet"])


@pytest.mark.parametrize("batch_size", [64, 7, 1])
def test_every_batch_holds_the_ratios(batch_size):
    ratios = list(partition_ratios("spin", SIZES).values())
    nb = 1000
    counts = batch_counts(ratios, batch_size, nb)
    quota = np.asarray(ratios) * batch_size
    assert (counts.sum(1) == batch_size).all()
    assert (counts >= np.floor(quota + 1e-9)).all() and (counts <= np.ceil(quota - 1e-9)).all()
    cum = np.cumsum(counts, axis=0)
    expected = np.arange(1, nb + 1)[:, None] * quota[None]
    assert np.abs(cum - expected).max() < 1.0 + 1e-6  # long-run proportions exact to one sample


def _plan_datasets(plan, offsets):
    return np.searchsorted(offsets, plan, side="right") - 1


def test_sampler_batches_match_counts_and_are_deterministic():
    sizes, ratios = [50, 7, 20], [0.5, 0.2, 0.3]
    s = MixedBatchSampler(sizes, ratios, batch_size=10, batches_per_epoch=30, seed=3)
    batches = list(s)
    assert len(batches) == 30 and s.epoch == 1
    for b, batch in enumerate(batches):
        ds = _plan_datasets(np.array([k for k, _ in batch]), s.offsets)
        assert np.bincount(ds, minlength=3).tolist() == s.counts[b].tolist() == [5, 2, 3]
    assert batches == list(MixedBatchSampler(sizes, ratios, 10, 30, seed=3))
    assert batches != list(MixedBatchSampler(sizes, ratios, 10, 30, seed=4))
    # dataset 1 (7 samples) is drawn 60 times per epoch: full passes over a permutation, every sample present
    local = [k - s.offsets[1] for batch in batches for k, _ in batch if s.offsets[1] <= k < s.offsets[2]]
    assert sorted(local[:56]) == sorted(list(range(7)) * 8)
    seeds = [a for batch in batches for _, a in batch]
    assert len(set(seeds)) == len(seeds)  # a distinct augmentation stream per draw
    assert list(s) != batches  # the next epoch continues the permutations


def test_resume_exactly():
    sizes, ratios = [40, 13], [0.75, 0.25]
    ref = MixedBatchSampler(sizes, ratios, 8, 12, seed=1)
    epoch0, epoch1 = list(ref), list(ref)
    s = MixedBatchSampler(sizes, ratios, 8, 12, seed=1)
    it = iter(s)
    seen = [next(it) for _ in range(5)]
    state = s.state_dict()
    assert state["epoch"] == 0 and state["batch"] == 5 and seen == epoch0[:5]
    r = MixedBatchSampler(sizes, ratios, 8, 12, seed=1)
    r.load_state_dict(state)
    assert len(r) == 7 and list(r) == epoch0[5:] and list(r) == epoch1
    # the trainer's own count wins over the prefetching loader's
    r2 = MixedBatchSampler(sizes, ratios, 8, 12, seed=1)
    r2.load_state_dict(s.state_dict(batches_done=3))
    assert list(r2) == epoch0[3:]
    with pytest.raises(ValueError, match="batch_size"):
        MixedBatchSampler(sizes, ratios, 16, 12, seed=1).load_state_dict(state)


def test_ddp_ranks_draw_disjoint_samples_with_the_same_counts():
    sizes, ratios = [100, 60], [0.5, 0.5]
    ranks = [MixedBatchSampler(sizes, ratios, 4, 10, seed=0, rank=r, world_size=2) for r in range(2)]
    plans = [np.concatenate([np.array([k for k, _ in b]) for b in rs]) for rs in map(list, ranks)]
    assert not set(plans[0]) & set(plans[1])
    assert (ranks[0].counts == ranks[1].counts).all()


def test_mixed_dataset_through_a_loader(tmp_path):
    rng = np.random.default_rng(0)
    datasets = []
    for name, n in (("a", 5), ("b", 3)):
        (tmp_path / name).mkdir()
        for i in range(n):
            cv2.imwrite(str(tmp_path / name / f"{i}.jpg"), (rng.random((40, 40, 3)) * 255).astype(np.uint8))
        save_spin_npz(tmp_path / name / "d.npz", imgname=[f"{i}.jpg" for i in range(n)],
                      center=np.full((n, 2), 20.0), scale=np.full(n, 0.2))
        datasets.append(BaseDataset(tmp_path / name / "d.npz", tmp_path / name, name, is_train=True))
    mixed = MixedDataset(datasets)
    assert len(mixed) == 8 and mixed.locate(6) == (1, 1)
    sampler = MixedBatchSampler(mixed.sizes, [2 / 3, 1 / 3], batch_size=3, batches_per_epoch=4, seed=0)
    batches = list(build_loader(mixed, batch_sampler=sampler, num_workers=0))
    assert len(batches) == 4
    for b in batches:
        assert b["img"].shape == (3, 3, 224, 224) and b["dataset_name"] == ["a", "a", "b"]
    again = list(build_loader(mixed, batch_sampler=MixedBatchSampler(mixed.sizes, [2 / 3, 1 / 3], 3, 4, seed=0),
                              num_workers=0))
    assert all((x["img"] == y["img"]).all() for x, y in zip(batches, again))  # augmentation is reproducible
