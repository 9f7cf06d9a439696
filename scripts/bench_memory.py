"""Peak memory of a benchmark process, printed by every ``scripts/benchmark*.py`` (issue "Speed close to the
hardware"): the CPU's peak resident set size of this process (``getrusage``; Linux reports KiB) and, where CUDA was
used, ``torch.cuda.max_memory_allocated``."""
from __future__ import annotations

import resource
import sys

import torch


def peak_memory() -> dict[str, float]:
    """{'cpu_peak_rss_mib': ..., 'cuda_max_allocated_mib': ... (only where CUDA is initialised)}."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"cpu_peak_rss_mib": rss / (1024 * 1024 if sys.platform == "darwin" else 1024)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def reset_cuda_peak() -> None:
    """Start a new CUDA peak (per configuration); the CPU peak cannot be reset and stays the process's."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()


def memory_line() -> str:
    """'peak memory: CPU RSS 1234 MiB, CUDA max allocated 567 MiB' (the CUDA part only where CUDA ran)."""
    m = peak_memory()
    text = f"peak memory: CPU RSS {m['cpu_peak_rss_mib']:.0f} MiB"
    if "cuda_max_allocated_mib" in m:
        text += f", CUDA max allocated {m['cuda_max_allocated_mib']:.0f} MiB"
    return text
