"""Datasets (spec §4): SPIN-format npz files, official cropping/augmentation, the mixed dataset and its
per-batch-ratio sampler, data loaders, and the built-in synthetic dataset (``pymaf.data.synthetic``).

Modules: ``spin_npz`` (file format), ``crop`` (geometry, resize backends), ``augment`` (augmentation and label
transforms), ``dataset`` (``BaseDataset``: the per-sample dict of §4.2), ``fits`` (SPIN final fits), ``mixed``
(``MixedDataset``, ``MixedBatchSampler``, presets), ``loader`` (DataLoader construction), ``synthetic``.
"""
from pymaf.data.augment import AugmentConfig, AugmentParams
from pymaf.data.dataset import BaseDataset, build_dataset
from pymaf.data.loader import build_loader
from pymaf.data.mixed import PARTITIONS, MixedBatchSampler, MixedDataset, build_mixed_dataset, partition_ratios
from pymaf.data.spin_npz import SpinAnnotations, SpinFormatError, load_spin_npz, save_spin_npz

__all__ = ["AugmentConfig", "AugmentParams", "BaseDataset", "build_dataset", "build_loader", "PARTITIONS",
           "MixedBatchSampler", "MixedDataset", "build_mixed_dataset", "partition_ratios", "SpinAnnotations",
           "SpinFormatError", "load_spin_npz", "save_spin_npz"]
