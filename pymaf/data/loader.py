"""DataLoader construction: OpenCV decoding in worker processes, persistent workers, pinned memory.

Each worker runs sequential OpenCV and single-threaded torch (``data.images.configure_worker_threads``: one
sample per core is the fastest way to use the cores and avoids oversubscription). ``collate`` is torch's default: tensors are stacked, strings become lists.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pymaf.data.images import configure_worker_threads


def to_device(batch: Mapping[str, Any], device: torch.device | str) -> dict[str, Any]:
    """Tensors of a collated batch moved to ``device`` (non-blocking: from pinned memory the copy overlaps); other
    values unchanged."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def default_num_workers() -> int:
    """All the cores this process may use (sched_getaffinity where available)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def build_loader(dataset: Dataset, *, batch_size: int | None = None, batch_sampler: Sampler | None = None,
                 shuffle: bool = False, num_workers: int | None = None, pin_memory: bool | None = None,
                 persistent_workers: bool = True, prefetch_factor: int = 4, drop_last: bool = False,
                 generator: torch.Generator | None = None) -> DataLoader:
    """The DataLoader of training (pass ``batch_sampler``, e.g. ``MixedBatchSampler``), evaluation and the
    benchmarks (``batch_size``; ``shuffle`` / ``drop_last``).

    num_workers: None -> all available cores; 0 loads in the main process. pin_memory: None -> when CUDA is
    available (callers pass ``device.type == 'cuda'``). persistent_workers/prefetch_factor and the
    worker set-up apply only with workers. generator: where the shuffle order and the workers' base seeds are drawn from (a
    private one keeps the global RNG untouched: exact resume); collate: torch's default.
    """
    if (batch_sampler is None) == (batch_size is None):
        raise ValueError("pass exactly one of batch_size (evaluation) or batch_sampler (training)")
    workers = default_num_workers() if num_workers is None else int(num_workers)
    kwargs: dict[str, Any] = dict(batch_sampler=batch_sampler) if batch_sampler is not None else dict(
        batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    if workers > 0:
        kwargs.update(persistent_workers=persistent_workers, prefetch_factor=prefetch_factor,
                      worker_init_fn=configure_worker_threads)
    pin = torch.cuda.is_available() if pin_memory is None else pin_memory
    return DataLoader(dataset, num_workers=workers, pin_memory=pin, generator=generator, **kwargs)
