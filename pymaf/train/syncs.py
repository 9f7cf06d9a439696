"""Count the host syncs of a piece of code (a training step): the operations that make the host wait for the
device, or the device wait for the host. Used by the test of the training step and by
``scripts/benchmark_train.py``.

Counted, by kind:

* ``item``: ``aten._local_scalar_dense`` (``.item()``, ``float(t)``, ``bool(t)``, ``int(t)``, ``if t:``);
* ``shape``: operations whose output shape depends on the data (``nonzero``, ``masked_select``, indexing or
  ``index_put_`` with a boolean mask, ``repeat_interleave`` without ``output_size``, ``unique``);
* ``h2d``: host data turned into a tensor inside the code (``torch.tensor`` / ``as_tensor`` / ``asarray`` of
  Python or NumPy data, factory functions called without ``device=``): on a GPU every one is a blocking
  host-to-device copy; plus, on a real accelerator, every blocking CPU -> device copy;
* ``d2h``: blocking device -> CPU copies (``.cpu()``, ``.tolist()``, ``.numpy()`` on an accelerator).

On the CPU the ``h2d`` and ``d2h`` kinds are detected from the calls (the data never leaves the host), so the
same count holds on the CPU and on a GPU: this is what lets the suite check the step without a GPU. Not
counted: reads of tensors that stay on the host in a GPU run too (``host_tensors``, e.g. Adam's step counters,
:func:`optimizer_host_tensors`) and, on an accelerator, reads of any CPU tensor. The ``meta`` device stands in
for an accelerator where code runs without data (a CPU -> meta copy counts as ``h2d``).
"""
from __future__ import annotations

import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

_SHAPE_OPS = {aten.nonzero.default, aten.masked_select.default, aten.unique_dim.default,
              aten._unique2.default, aten.unique_consecutive.default, aten.argwhere.default}
_BOOL_INDEX_OPS = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default,
                   aten._index_put_impl_.default}
_FROM_HOST = {torch.tensor, torch.as_tensor, torch.asarray}
_FACTORIES = {torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.eye, torch.linspace,
              torch.rand, torch.randn, torch.randint, torch.randperm}
_TO_HOST = {torch.Tensor.tolist, torch.Tensor.numpy}


def _is_bool_index(args: tuple) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(torch.is_tensor(i) and i.dtype in (torch.bool, torch.uint8) for i in (indices or ()))


def _host_data(x: Any) -> bool:
    """True when ``x`` (the data argument of ``torch.tensor``/``as_tensor``) is not already a tensor."""
    return not torch.is_tensor(x)


_TORCH_DIR = str(Path(torch.__file__).parent)


def _caller() -> str:
    """'file:line' of the innermost frame outside torch and this module (where the sync was asked for)."""
    for frame in reversed(traceback.extract_stack()):
        if not frame.filename.startswith(_TORCH_DIR) and frame.filename != __file__:
            return f"{Path(frame.filename).name}:{frame.lineno}"
    return "?"


class _Counts(Counter):
    """A Counter of kinds that can also record where each event came from (``where``)."""

    def __init__(self, record: bool) -> None:
        super().__init__()
        self.record = record
        self.where: Counter = Counter()

    def add(self, kind: str) -> None:
        self[kind] += 1
        if self.record:
            self.where[(kind, _caller())] += 1


class _FunctionCounter(TorchFunctionMode):
    """Counts tensors made from host data (Python API level, where a missing ``device=`` is visible)."""

    def __init__(self, counts: _Counts) -> None:
        super().__init__()
        self.counts, self.depth = counts, 0

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        kind = None
        if self.depth == 0:
            if func in _FROM_HOST and args and _host_data(args[0]):
                kind = "h2d"
            elif func in _FACTORIES and kwargs.get("device") is None:
                kind = "h2d"
            elif func in _TO_HOST:
                kind = "d2h"
        counted = kind is not None
        if counted:
            self.counts.add(kind)
        self.depth += counted
        try:
            return func(*args, **kwargs)
        finally:
            self.depth -= counted


class _DispatchCounter(TorchDispatchMode):
    """Counts scalar reads, data-dependent shapes and real cross-device copies (ATen level)."""

    def __init__(self, counts: _Counts, functions: _FunctionCounter, host_ptrs: set[int], device: torch.device) -> None:
        super().__init__()
        self.counts, self.functions, self.host_ptrs = counts, functions, host_ptrs
        self.free_cpu_reads = device.type != "cpu"

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is aten._local_scalar_dense.default:
            t = args[0]
            host = t.device.type == "cpu" and (self.free_cpu_reads or t.data_ptr() in self.host_ptrs)
            if not host:
                self.counts.add("item")
        elif func in _SHAPE_OPS:
            self.counts.add("shape")
        elif func in _BOOL_INDEX_OPS and _is_bool_index(args):
            self.counts.add("shape")
        elif func is aten.repeat_interleave.Tensor and kwargs.get("output_size") is None:
            self.counts.add("shape")
        elif func in (aten._to_copy.default, aten.copy_.default) and not kwargs.get("non_blocking", False) \
                and not (len(args) > 2 and args[2]):
            src = args[1] if func is aten.copy_.default else args[0]
            dst = args[0].device if func is aten.copy_.default else kwargs.get("device") or src.device
            if torch.is_tensor(src) and src.device != torch.device(dst):
                if self.functions.depth:
                    pass                     # already counted at the call (torch.tensor(..., device=d), .tolist())
                elif src.device.type == "cpu":
                    self.counts.add("h2d")
                elif torch.device(dst).type == "cpu":
                    self.counts.add("d2h")
        return func(*args, **kwargs)


class SyncCounter:
    """Context manager counting host syncs by kind (module docstring)::

        with SyncCounter() as c:
            trainer.train_step(batch)
        c.total, c.counts  # e.g. 3, Counter({'item': 1, 'shape': 2})
    """

    def __init__(self, record_callers: bool = False, host_tensors: Iterable[torch.Tensor] = (),
                 device: str | torch.device = "cpu") -> None:
        """record_callers: fill :attr:`where`; host_tensors: tensors that stay on the host in a GPU run too
        (reading them is no sync; see :func:`optimizer_host_tensors`); device: the device the code runs on
        (on an accelerator, reading any CPU tensor is free)."""
        self.counts = _Counts(record_callers)
        self._fn = _FunctionCounter(self.counts)
        ptrs = {t.data_ptr() for t in host_tensors if t.device.type == "cpu"}
        self._dispatch = _DispatchCounter(self.counts, self._fn, ptrs, torch.device(device))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __enter__(self) -> "SyncCounter":
        self._fn.__enter__()
        self._dispatch.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._dispatch.__exit__(*exc)
        self._fn.__exit__(*exc)

    @property
    def where(self) -> Counter:
        """(kind, 'file:line') -> count; filled when built with ``record_callers=True``."""
        return self.counts.where

    def summary(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none"


def optimizer_host_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The optimizer state PyTorch keeps on the host whatever the parameters' device: the ``step`` counters of
    Adam & co. (unless ``capturable``/``fused``). Reading them (``_get_value(step)``) is no device sync."""
    return [st["step"] for st in optimizer.state.values()
            if torch.is_tensor(st.get("step")) and st["step"].device.type == "cpu"]


__all__ = ["SyncCounter", "optimizer_host_tensors"]
