"""torchrun / DistributedDataParallel helpers (spec §3.7: DDP and SyncBN behind a switch).

Run on N GPUs of one machine::

    torchrun --nproc_per_node=N train.py --cfg configs/pymaf_spin_setting.yaml

``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; :func:`init_from_env` reads them.
Without them everything runs in a single process (rank 0 of 1).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist
from torch import nn

from pymaf.checkpoint import bare_network


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device: str = "cpu") -> DistInfo:
    """Initialise the default process group from torchrun's env vars (nccl on CUDA, gloo on CPU).
    Returns a DistInfo; single-process when WORLD_SIZE is unset or 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not tdist.is_initialized():
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        tdist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local)


def process_device(device: str, info: DistInfo) -> torch.device:
    """'cuda' under DDP means this process's local GPU; anything else is used as given."""
    if device.startswith("cuda") and info.distributed and device == "cuda":
        return torch.device("cuda", info.local_rank)
    return torch.device(device)


def wrap_model(model: nn.Module, info: DistInfo, device: torch.device, sync_bn: bool = False) -> nn.Module:
    """DDP-wrap ``model`` (optionally converting BatchNorm to SyncBatchNorm) when distributed; else return it."""
    if not info.distributed:
        return model
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    # find_unused_parameters=False: every parameter reaches the loss in every configuration (PyMAF, HMR, IUV head
    # off, n_iter=1, batches without SMPL or 3D labels: the masked losses keep the graph, tests/test_train.py),
    # so the extra autograd traversal per step is not needed (DDP raises if a parameter ever goes unused).
    # broadcast_buffers=False: broadcasting every buffer at every forward sends ~21 MiB, almost all constant
    # SMPL arrays. The only buffers that change are the BatchNorm running statistics; train-mode BN does not
    # read them, and rank 0 (which saves checkpoints) keeps its own either way (it is the broadcast source), so
    # training is unchanged. Where the ranks' copies must agree (evaluation on every rank), call
    # sync_buffers(), which broadcasts the state-dict buffers (BN statistics, 0.2 MiB) from rank 0.
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=False,
                                               broadcast_buffers=False)


def sync_buffers(model: nn.Module, info: DistInfo) -> int:
    """Broadcast rank 0's state-dict buffers (BatchNorm running statistics, the mean parameters) to every rank,
    in place; the non-persistent constants (SMPL arrays) are identical everywhere and stay. Call on every rank
    (a collective). Returns the number of buffers sent (0 when not distributed)."""
    if not info.distributed:
        return 0
    model = bare_network(model)
    persistent = set(model.state_dict(keep_vars=True))
    bufs = [b for name, b in model.named_buffers() if name in persistent]
    for b in bufs:
        tdist.broadcast(b.data, src=0)
    return len(bufs)


def any_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if ``flag`` is True on any rank (used so all ranks stop together on a NaN)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """``t`` summed over every rank (in place; returned). Single process: ``t`` unchanged."""
    if info.distributed:
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t


def barrier(info: DistInfo) -> None:
    if info.distributed:
        tdist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.distributed and tdist.is_initialized():
        tdist.destroy_process_group()
