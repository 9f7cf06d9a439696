"""pymaf.train.syncs: every kind of host sync is counted, and what is not a sync is not."""
from __future__ import annotations

import torch

from pymaf.train.syncs import SyncCounter, optimizer_host_tensors


def test_each_kind_is_counted() -> None:
    x = torch.arange(6.0)
    with SyncCounter(record_callers=True) as c:
        float(x.sum())                    # item
        bool((x > 2).any())               # item
        x[x > 2]                          # shape (boolean-mask index)
        x.nonzero()                       # shape
        torch.repeat_interleave(x.long()) # shape (no output_size)
        y = x.clone()
        y[x > 4] = 0.0                    # shape (index_put_ with a mask)
        torch.tensor([1.0, 2.0])          # h2d (host data)
        torch.zeros(3)                    # h2d (no device=: made on the host)
        x.tolist()                        # d2h
    assert dict(c.counts) == {"item": 2, "shape": 4, "h2d": 2, "d2h": 1}, dict(c.where)
    assert all(where.startswith("test_syncs.py:") for _, where in c.where)


def test_what_is_not_a_sync_is_not_counted() -> None:
    x = torch.arange(6.0)
    with SyncCounter() as c:
        m = x > 2
        torch.where(m, x, 0.0).sum() / m.sum().clamp_min(1)
        torch.zeros(3, device=x.device)
        x.index_select(0, torch.arange(2, device=x.device))
        torch.repeat_interleave(torch.arange(2, device=x.device), torch.tensor([1, 2], device=x.device), output_size=3)
    assert c.counts["h2d"] == 1 and c.total == 1, c.summary()   # only the torch.tensor of host data ([1, 2])


def test_copies_to_a_device_and_host_counters() -> None:
    """A CPU -> device copy counts ('meta' stands in for a GPU); Adam's host step counters do not."""
    host, dev = torch.ones(3), torch.ones(3, device="meta")
    with SyncCounter() as c:
        host.to("meta")
        dev.copy_(host)
        dev.to("meta")
        host.to("meta", non_blocking=True)
    assert dict(c.counts) == {"h2d": 2}
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([p], lr=0.1)
    p.sum().backward()
    opt.step()
    with SyncCounter() as c:
        opt.step()
    assert c.counts["item"] >= 1                       # the step counter is read on the host
    with SyncCounter(host_tensors=optimizer_host_tensors(opt)) as c:
        opt.step()
    assert c.total == 0, c.summary()
    one = torch.ones(1)
    with SyncCounter(device="cuda") as c:              # on an accelerator a CPU scalar read is free
        float(one)
    assert c.total == 0
