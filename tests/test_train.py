"""Trainer: exact resume, NaN detection, 2-process DDP sync (tiny generated SPIN-format data, CPU)."""
from __future__ import annotations

import math
import os
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pymaf.config import load_config

N_SAMPLES = 6


def _make_tiny_dataset(root: Path, body_root: Path) -> None:
    """A few SPIN-format samples (noise images, small GT poses, keypoints of the GT joints) under
    <root>/synthetic, plus the built-in body files linked into the root."""
    for item in body_root.iterdir():
        if not (root / item.name).exists():
            os.symlink(item, root / item.name)
    out = root / "synthetic"
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(N_SAMPLES):
        img = rng.integers(0, 255, size=(96, 96, 3), dtype=np.uint8)
        cv2.circle(img, (48, 48), 20, (255, 255, 255), -1)
        names.append(f"images/{i:03d}.jpg")
        cv2.imwrite(str(out / names[-1]), img)
    pose = rng.normal(0, 0.2, size=(N_SAMPLES, 72)).astype(np.float32)
    pose[:, 0] = np.pi
    part = np.concatenate([rng.uniform(20, 76, size=(N_SAMPLES, 24, 2)), np.ones((N_SAMPLES, 24, 1))], -1)
    S = np.concatenate([rng.normal(0, 0.3, size=(N_SAMPLES, 24, 3)), np.ones((N_SAMPLES, 24, 1))], -1)
    arrays = dict(imgname=np.array(names), center=np.full((N_SAMPLES, 2), 48.0), scale=np.full(N_SAMPLES, 0.4),
                  part=part.astype(np.float32), S=S.astype(np.float32), pose=pose,
                  shape=rng.normal(0, 0.5, size=(N_SAMPLES, 10)).astype(np.float32),
                  has_smpl=np.ones(N_SAMPLES, np.float32))
    from pymaf.data.spin_npz import save_spin_npz
    save_spin_npz(out / "synthetic_train.npz", **arrays)
    save_spin_npz(out / "synthetic_val.npz", **{k: v[:2] for k, v in arrays.items()})


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory, body_root: Path) -> Path:
    root = tmp_path_factory.mktemp("train_data")
    _make_tiny_dataset(root, body_root)
    return root


def _cfg(log_dir: Path, *extra: str):
    return load_config(None, [
        "data.num_workers=0", "eval.num_workers=0", "eval.batch_size=2", "train.batch_size=2",
        "train.epoch_length=2", "train.num_epochs=10", "train.log_every=1", "train.checkpoint_every=1000",
        "train.val_at_end=false", "train.val_every=0", f"train.log_dir={log_dir}", "train.lr=1e-4",
        "model.n_iter=2", *extra])


def test_exact_resume(data_root: Path, tmp_path: Path) -> None:
    """Interrupted after 2 steps and resumed: the next 2 losses equal the uninterrupted run's, step for step.
    The uninterrupted run also logs prediction overlays every step, which must not perturb training."""
    from pymaf.train import Trainer
    full = Trainer(_cfg(tmp_path / "a", "train.max_steps=4", "train.vis_every=1"), data_root, progress=False).fit()
    Trainer(_cfg(tmp_path / "b", "train.max_steps=2"), data_root, progress=False).fit()
    assert (tmp_path / "b" / "checkpoints" / "latest.pt").is_file()
    resumed = Trainer(_cfg(tmp_path / "b", "train.max_steps=4"), data_root, resume=True, progress=False).fit()
    assert len(full.losses) == 4 and len(resumed.losses) == 2 and resumed.step == 4
    assert resumed.losses == pytest.approx(full.losses[2:], rel=1e-5, abs=1e-6)   # crosses an epoch boundary
    events = b"".join(p.read_bytes() for p in (tmp_path / "a").rglob("events.out.tfevents*"))
    assert b"train/mesh_pred" in events and b"losses/loss" in events
    # the trainer's checkpoints load without unpickling arbitrary objects (eval.py / demo.py use weights_only)
    from pymaf.checkpoint import read_checkpoint
    state, meta = read_checkpoint(tmp_path / "a" / "checkpoints" / "latest.pt")
    assert meta["total_step_count"] == 4 and any(k.startswith("regressor.") for k in state)


def test_nan_loss_stops_and_keeps_checkpoint(data_root: Path, tmp_path: Path) -> None:
    from pymaf.train import NonFiniteLossError, Trainer
    tr = Trainer(_cfg(tmp_path, "train.max_steps=1"), data_root, progress=False)
    tr.fit()
    ckpt = tmp_path / "checkpoints" / "latest.pt"
    before = ckpt.read_bytes()
    tr2 = Trainer(_cfg(tmp_path, "train.max_steps=3"), data_root, resume=True, progress=False)
    with torch.no_grad():
        next(tr2.model.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"step 2 .*sample_index \[\d+, \d+\]"):
        tr2.fit()
    assert ckpt.read_bytes() == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, data_root: str, log_dir: str, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from pymaf.train import Trainer
    from pymaf.train.dist import cleanup
    tr = Trainer(_cfg(Path(log_dir), "train.max_steps=2", "train.batch_size=1"), data_root, progress=False)
    res = tr.fit()
    flat = torch.cat([p.detach().flatten() for p in tr.model.parameters()])
    torch.save({"params": flat, "losses": res.losses}, Path(out) / f"rank{rank}.pt")
    cleanup(tr.info)


def test_ddp_two_processes_stay_in_sync(data_root: Path, tmp_path: Path) -> None:
    import torch.multiprocessing as mp
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(data_root), str(tmp_path / "log"), str(tmp_path)), nprocs=2)
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert torch.equal(r0["params"], r1["params"])
    assert r0["losses"] != r1["losses"]          # different samples per rank
    assert all(math.isfinite(x) for x in r0["losses"])
    assert (tmp_path / "log" / "checkpoints" / "latest.pt").is_file()
