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
    from pymaf.train.dist import sync_buffers
    tr = Trainer(_cfg(Path(log_dir), "train.max_steps=2", "train.batch_size=1", "train.val_at_end=true"), data_root,
                 progress=False)
    res = tr.fit()      # with find_unused_parameters=False, DDP raises at step 2 if a parameter went unused
    val_rows = len(tr.val.loader.dataset)   # this rank's slice of the validation set
    flags = {"find_unused_parameters": tr.net.find_unused_parameters, "broadcast_buffers": tr.net.broadcast_buffers}
    # a batch without SMPL or 3D labels, twice through DDP: every parameter still takes part in the reduction
    batch = next(tr._batches())
    batch.update(has_smpl=torch.zeros_like(batch["has_smpl"]), has_pose_3d=torch.zeros_like(batch["has_pose_3d"]))
    unlabelled = [float(tr.train_step(batch)[0]) for _ in range(2)]
    no_grad = [n for n, p in tr.model.named_parameters() if p.grad is None]
    flat = torch.cat([p.detach().flatten() for p in tr.model.parameters()])
    bn = lambda: torch.cat([b.detach().float().flatten() for n, b in tr.model.named_buffers()  # noqa: E731
                            if "running_" in n])
    bn_before = bn()
    sent = sync_buffers(tr.net, tr.info)
    torch.save({"params": flat, "losses": res.losses, "flags": flags, "unlabelled": unlabelled, "no_grad": no_grad,
                "bn_before": bn_before, "bn_after": bn(), "sent": sent, "val": res.val, "val_rows": val_rows},
               Path(out) / f"rank{rank}.pt")
    cleanup(tr.info)


def test_ddp_two_processes_stay_in_sync(data_root: Path, tmp_path: Path) -> None:
    import torch.multiprocessing as mp
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(data_root), str(tmp_path / "log"), str(tmp_path)), nprocs=2)
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert torch.equal(r0["params"], r1["params"])
    assert r0["losses"] != r1["losses"]          # different samples per rank
    # no extra autograd traversal, no per-forward broadcast of the (constant) buffers
    assert r0["flags"] == r1["flags"] == {"find_unused_parameters": False, "broadcast_buffers": False}
    assert r0["no_grad"] == r1["no_grad"] == [] and all(math.isfinite(x) for x in r0["unlabelled"])
    # each rank's BN statistics follow its own batches; sync_buffers makes them rank 0's everywhere
    assert not torch.equal(r0["bn_before"], r1["bn_before"])
    assert torch.equal(r1["bn_after"], r0["bn_before"]) and torch.equal(r0["bn_after"], r0["bn_before"])
    assert r0["sent"] == r1["sent"] > 100       # the state-dict buffers only (BN statistics, mean parameters)
    assert all(math.isfinite(x) for x in r0["losses"])
    assert (tmp_path / "log" / "checkpoints" / "latest.pt").is_file()
    # validation sharded over the ranks (one sample each), sums all-reduced: one process's numbers
    from pymaf.eval import evaluate
    assert r0["val_rows"] == r1["val_rows"] == 1 and r1["val"] == {}
    single = evaluate("synthetic-val", str(tmp_path / "log" / "checkpoints" / "latest.pt"), data_root,
                      num_workers=0, printer=lambda s: None)["metrics"]
    for name in ("mpjpe", "pa_mpjpe", "pve"):
        assert r0["val"][name] == pytest.approx(single[name], rel=1e-5), name


def _make_3dpw_style(root: Path) -> None:
    """The tiny set as a 3DPW test file (genders mixed) under its registered paths."""
    import shutil

    from pymaf import paths
    from pymaf.data.spin_npz import load_spin_npz, save_spin_npz
    src = root / "synthetic"
    ann = load_spin_npz(src / "synthetic_train.npz")
    img_root = paths.dataset_image_root(root, "3dpw")
    shutil.copytree(src / "images", img_root / "images", dirs_exist_ok=True)
    save_spin_npz(paths.dataset_npz(root, "3dpw", "eval"), imgname=ann.imgname, center=ann.center,
                  scale=ann.scale, pose=ann.pose, shape=ann.betas, has_smpl=ann.has_smpl,
                  gender=np.array(["m", "f", "f", "m", "f", "m"][:len(ann)]))


def test_validation_equals_eval_py_for_the_checkpoint(data_root: Path, tmp_path: Path, capsys) -> None:
    """The numbers the trainer logs for best.pt are the numbers eval.py reports for that checkpoint (one
    protocol implementation: gendered GT meshes of 3DPW, H36M-regressor joints, PVE)."""
    import json

    import eval as eval_py
    from pymaf.train import Trainer
    _make_3dpw_style(data_root)
    res = Trainer(_cfg(tmp_path / "run", "train.max_steps=2", "train.val_at_end=true", "data.eval_dataset=3dpw"),
                  data_root, progress=False).fit()
    logged = capsys.readouterr().out
    assert "[val step 2] 3dpw:" in logged and "best.pt: pa_mpjpe" in logged
    assert res.best["metric"] == "pa_mpjpe" and res.best["step"] == 2
    eval_py.main(["--checkpoint", str(tmp_path / "run" / "checkpoints" / "best.pt"), "--dataset", "3dpw",
                  "--data-root", str(data_root), "--out-dir", str(tmp_path / "eval"), "--num-workers", "0",
                  "--batch-size", "4", "--device", "cpu"])
    doc = json.loads((tmp_path / "eval" / "eval_3dpw.json").read_text())
    report = doc["metrics"]
    assert set(report) == {"mpjpe", "pa_mpjpe", "pve"}
    for name, value in report.items():          # eval.py runs the fused fp32 copy (runtime.fuse): same numbers
        assert res.val[name] == pytest.approx(value, rel=1e-5), name
    assert res.best["value"] == pytest.approx(report["pa_mpjpe"], rel=1e-5)
    assert (doc["settings"]["amp"], doc["settings"]["fuse"]) == ("none", True)
    args = ["--checkpoint", str(tmp_path / "run" / "checkpoints" / "best.pt"), "--dataset", "3dpw", "--data-root",
            str(data_root), "--out-dir", str(tmp_path / "eval_bf16"), "--num-workers", "0", "--device", "cpu"]
    eval_py.main(args + ["--amp", "bf16"])      # opt-in, and recorded
    bf16 = json.loads((tmp_path / "eval_bf16" / "eval_3dpw.json").read_text())
    assert bf16["settings"]["amp"] == "bf16"
    from pymaf.errors import InputError
    with pytest.raises(InputError, match="--amp"):
        eval_py.main(args + ["--opts", "runtime.amp=bf16"])


def test_best_metric_is_a_config_key(data_root: Path, tmp_path: Path) -> None:
    from pymaf.config import ConfigError
    from pymaf.train import Trainer
    with pytest.raises(ConfigError, match="train.best_metric.*'pck'.*mpjpe, pa_mpjpe, pve"):
        Trainer(_cfg(tmp_path / "x", "train.best_metric=pck"), data_root, progress=False)
    res = Trainer(_cfg(tmp_path / "y", "train.max_steps=1", "train.val_at_end=true", "train.best_metric=pve"),
                  data_root, progress=False).fit()
    assert res.best["metric"] == "pve" and res.best["value"] == pytest.approx(res.val["pve"])


def test_resume_refuses_changed_settings_and_applies_safe_ones(data_root: Path, tmp_path: Path) -> None:
    from pymaf.errors import RunError
    from pymaf.train import Trainer
    Trainer(_cfg(tmp_path, "train.max_steps=1"), data_root, progress=False).fit()
    ckpt = tmp_path / "checkpoints" / "latest.pt"
    before = ckpt.read_bytes()
    with pytest.raises(RunError, match=r"train\.batch_size: 2 -> 4; train\.lr: 0\.0001 -> 0\.001; "
                                       r"train\.seed: 0 -> 3"):
        Trainer(_cfg(tmp_path, "train.max_steps=2", "train.lr=1e-3", "train.batch_size=4", "train.seed=3"),
                data_root, resume=True, progress=False)
    # the saved sampler state is restored and checked: a checkpoint from other data is refused
    st = torch.load(ckpt, weights_only=True)
    st["sampler"]["sizes"] = [s + 1 for s in st["sampler"]["sizes"]]
    torch.save(st, tmp_path / "other.pt")
    tr = Trainer.__new__(Trainer)  # only what _load needs
    tr.cfg, tr.device, tr.notes = _cfg(tmp_path), torch.device("cpu"), []
    from pymaf.train import data_adapter as dada
    from pymaf.train.dist import DistInfo
    _, tr.batch_sampler = dada.train_loader(tr.cfg, data_root, DistInfo())
    with pytest.raises(RunError, match=r"training data differs.*other\.pt.*sizes"):
        tr._load(tmp_path / "other.pt")
    # safe changes are applied and said
    lines: list[str] = []
    tr = Trainer(_cfg(tmp_path, "train.max_steps=2", "train.log_every=5"), data_root, resume=True, progress=False)
    tr.log.info = lines.append  # type: ignore[method-assign]
    assert any("train.log_every: 1 -> 5" in n and "train.max_steps: 1 -> 2" in n for n in tr.notes)
    res = tr.fit()
    assert res.step == 2 and ckpt.read_bytes() != before


def test_resume_of_a_run_saved_before_a_key_existed(data_root: Path, tmp_path: Path) -> None:
    """A key missing from the saved config (added to the project later) ran with its default: not a change."""
    from pymaf.errors import RunError
    from pymaf.train import Trainer
    Trainer(_cfg(tmp_path, "train.max_steps=1"), data_root, progress=False).fit()
    ckpt = tmp_path / "checkpoints" / "latest.pt"
    st = torch.load(ckpt, weights_only=True)
    del st["config"]["model"]["maf_last_slope"], st["config"]["model"]["input_res"]
    torch.save(st, ckpt)
    tr = Trainer(_cfg(tmp_path, "train.max_steps=2"), data_root, resume=True, progress=False)
    assert not any("maf_last_slope" in n for n in tr.notes)
    with pytest.raises(RunError, match=r"model\.maf_last_slope: 0\.0 -> 0\.2"):
        Trainer(_cfg(tmp_path, "train.max_steps=2", "model.maf_last_slope=0.2"), data_root, resume=True,
                progress=False)


def test_new_run_refuses_a_log_dir_with_checkpoints_unless_overwrite(data_root: Path, tmp_path: Path) -> None:
    from pymaf.errors import RunError
    from pymaf.train import Trainer
    Trainer(_cfg(tmp_path, "train.max_steps=1"), data_root, progress=False).fit()
    ckpt = tmp_path / "checkpoints" / "latest.pt"
    before = ckpt.read_bytes()
    with pytest.raises(RunError, match=r"log dir holds another run .*latest\.pt.*--resume.*--overwrite"):
        Trainer(_cfg(tmp_path, "train.max_steps=1"), data_root, progress=False)
    assert ckpt.read_bytes() == before
    tr = Trainer(_cfg(tmp_path, "train.max_steps=1", "train.seed=1"), data_root, progress=False, overwrite=True)
    assert not ckpt.exists() and "removed the previous run's checkpoints latest.pt" in tr.notes[0]
    tr.fit()
    assert ckpt.is_file()


def test_synthetic_data_is_generated_once_per_machine(tmp_path: Path, monkeypatch) -> None:
    """Under torchrun only local rank 0 generates the synthetic dataset; every rank waits at the barrier."""
    from pymaf.train import data_adapter as dada
    from pymaf.train import dist
    from pymaf.train.dist import DistInfo
    calls: list[str] = []
    monkeypatch.setattr(dada, "ensure_synthetic", lambda cfg, root: calls.append("generate"))
    monkeypatch.setattr(dist, "barrier", lambda info: calls.append(f"barrier {info.rank}"))
    cfg = load_config(None, [])
    dada.prepare_training_data(cfg, tmp_path, DistInfo(rank=1, world_size=2, local_rank=1))
    assert calls == ["barrier 1"]
    dada.prepare_training_data(cfg, tmp_path, DistInfo(rank=0, world_size=2, local_rank=0))
    assert calls == ["barrier 1", "generate", "barrier 0"]


def test_use_fits_key_replaces_the_smpl_labels_of_a_plain_mixture(data_root: Path, tmp_path: Path) -> None:
    """data.use_fits used to act only with a mix_preset; with train_datasets it now reads final_fits/ too."""
    import shutil
    from pymaf.train import data_adapter as dada
    from pymaf.train.dist import DistInfo
    root = tmp_path / "root"
    shutil.copytree(data_root, root, symlinks=True)
    (root / "final_fits").mkdir()
    np.savez(root / "final_fits" / "synthetic.npz", pose=np.full((N_SAMPLES, 72), 0.1),
             betas=np.zeros((N_SAMPLES, 10)), valid_fit=np.ones(N_SAMPLES))
    plain, _ = dada.train_loader(_cfg(tmp_path), root, DistInfo())
    fits, _ = dada.train_loader(_cfg(tmp_path, "data.use_fits=true"), root, DistInfo())
    assert not np.allclose(plain.dataset.datasets[0].ann.pose, 0.1)
    np.testing.assert_allclose(fits.dataset.datasets[0].ann.pose, 0.1)


def test_vert_w_adds_the_l1_to_the_gt_smpl_mesh(data_root: Path, tmp_path: Path) -> None:
    from pymaf.losses import vertex_loss
    from pymaf.train import Trainer
    from pymaf.train.trainer import gt_smpl
    tr = Trainer(_cfg(tmp_path, "loss.vert_w=2.0", "model.aux_supv_on=false"), data_root, progress=False)
    batch = next(tr._batches())
    torch.manual_seed(0)  # the regressors' dropout draws the same masks in both forwards
    with torch.no_grad():
        out = tr.net(batch["img"])
    gt = gt_smpl(tr.smpl, batch["pose"], batch["betas"]).vertices
    torch.manual_seed(0)
    _, losses = tr.train_step(batch)
    for i in (1, 2):
        want = 2.0 * vertex_loss(out["smpl_out"][i]["verts"], gt, batch["has_smpl"].bool())
        assert float(want) > 0 and float(losses[f"loss_verts_{i}"]) == pytest.approx(float(want), rel=1e-5)


# ------------------------------------------------------------------------------------------------ GPU readiness
def _preloaded(tr, n: int) -> list:
    it = tr._batches()
    return [next(it) for _ in range(n)]


def test_non_logging_step_has_at_most_5_host_syncs(data_root: Path, tmp_path: Path) -> None:
    """A training step that does not log, checkpoint or validate makes at most 5 host syncs (counted by
    pymaf.train.syncs on the CPU: scalar reads, data-dependent shapes, host-to-device copies): the whole
    fit() iteration (GT meshes, IUV targets, forward, losses, backward, Adam, the loop's bookkeeping)."""
    from pymaf.train import Trainer
    from pymaf.train.syncs import SyncCounter, optimizer_host_tensors
    tr = Trainer(_cfg(tmp_path, "train.max_steps=4", "train.log_every=1000", "train.epoch_length=10"), data_root,
                 progress=False)
    preloaded = _preloaded(tr, 4)        # loaded outside the count (the loader's own work is on the host)
    counters: list[SyncCounter] = []

    def batches():
        for i, b in enumerate(preloaded):
            if i in (1, 2):              # steps 2 and 3: not logged (step 1 is), no checkpoint, not the last
                c = SyncCounter(record_callers=True, host_tensors=optimizer_host_tensors(tr.optimizer))
                counters.append(c)
                with c:
                    yield b
            else:
                yield b
    tr._batches = batches                # type: ignore[method-assign]
    res = tr.fit()
    assert res.step == 4 and len(res.losses) == 4 and all(math.isfinite(x) for x in res.losses)
    assert len(counters) == 2
    for c in counters:
        assert 1 <= c.total <= 5, dict(c.where)
    # the same count as the step's parts: the rasterizer's candidate count is the one sync left
    assert all(dict(c.counts) == {"item": 1} for c in counters), [dict(c.where) for c in counters]


def test_nan_at_a_step_that_does_not_log_is_named(data_root: Path, tmp_path: Path) -> None:
    """The loss is read on log/checkpoint steps only; a NaN at a step in between is still reported with its
    step number, and the last good checkpoint is kept."""
    from pymaf.train import NonFiniteLossError, Trainer
    Trainer(_cfg(tmp_path, "train.max_steps=1", "train.epoch_length=10"), data_root, progress=False).fit()
    ckpt = tmp_path / "checkpoints" / "latest.pt"
    before = ckpt.read_bytes()
    tr = Trainer(_cfg(tmp_path, "train.max_steps=4", "train.log_every=3", "train.checkpoint_every=3",
                      "train.epoch_length=10"), data_root,
                 resume=True, progress=False)
    with torch.no_grad():
        next(tr.model.parameters()).fill_(float("nan"))
    msg = r"at step 2 .*found at the check of step 3.*sample_index \[\d+, \d+\]"
    with pytest.raises(NonFiniteLossError, match=msg):
        tr.fit()
    assert tr.step == 3 and ckpt.read_bytes() == before


def test_resume_reads_the_checkpoint_onto_the_cpu(data_root: Path, tmp_path: Path) -> None:
    """_load maps the checkpoint to the CPU whatever the training device ('meta' stands in for a GPU: with
    map_location=device the numpy RNG state and Adam's step counters would land there and the load fails);
    the RNG states are restored and Adam's step counters stay host tensors."""
    from pymaf.train import Trainer
    Trainer(_cfg(tmp_path, "train.max_steps=2"), data_root, progress=False).fit()
    tr = Trainer(_cfg(tmp_path / "other", "train.max_steps=4"), data_root, progress=False)
    np.random.seed(123)
    tr.device = torch.device("meta")
    state = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    tr._load(tmp_path / "checkpoints" / "latest.pt")
    assert tr.step == 2
    assert np.array_equal(np.random.get_state()[1], state["rng"]["numpy"][1].numpy().astype(np.uint32))
    steps = [st["step"] for st in tr.optimizer.state.values()]
    assert steps and all(s.device.type == "cpu" and float(s) == 2 for s in steps)
    p = next(tr.model.parameters())
    assert tr.optimizer.state[p]["exp_avg"].device == p.device


@pytest.mark.parametrize("extra", [("model.n_iter=2",), ("model.arch=hmr",), ("model.aux_supv_on=false",),
                                   ("model.n_iter=1",)], ids=["pymaf", "hmr", "no_iuv_head", "n_iter1"])
def test_every_parameter_gets_a_gradient(data_root: Path, tmp_path: Path, extra: tuple[str, ...]) -> None:
    """What lets DDP run with find_unused_parameters=False: every parameter receives a gradient in every
    configuration, with labelled batches and with batches without SMPL or 3D labels."""
    from pymaf.train import Trainer
    tr = Trainer(_cfg(tmp_path, "train.max_steps=2", *extra), data_root, progress=False)
    batch = _preloaded(tr, 1)[0]
    unlabelled = dict(batch, has_smpl=torch.zeros_like(batch["has_smpl"]),
                      has_pose_3d=torch.zeros_like(batch["has_pose_3d"]))
    for b in (batch, unlabelled):
        tr.train_step(b)
        missing = [n for n, p in tr.model.named_parameters() if p.grad is None]
        assert not missing, missing
    assert sum(1 for _ in tr.model.parameters()) > 50


def test_gt_meshes_and_iuv_targets_without_host_syncs(body_files) -> None:
    """gt_smpl (FastLBS) equals the smplx layer; the IUV targets of a batch with a mixed mask equal the maps of
    the valid samples rendered alone (zeros elsewhere); together they cost one host sync (the rasterizer's)."""
    from pymaf.body.smpl import build_smpl
    from pymaf.geometry import axis_angle_to_rotmat
    from pymaf.model.body_output import FastLBS
    from pymaf.render.iuv import IUVRenderer
    from pymaf.train.syncs import SyncCounter
    from pymaf.train.trainer import gt_camera, gt_smpl, render_iuv_targets
    smpl = build_smpl(body_files)
    lbs = FastLBS(smpl, None)
    renderer = IUVRenderer(body_files.uv_processed, size=24)
    g = torch.Generator().manual_seed(0)
    pose = torch.randn(3, 72, generator=g) * 0.3
    pose[:, 0] = math.pi
    betas = torch.randn(3, 10, generator=g)
    rot = axis_angle_to_rotmat(pose.reshape(3, 24, 3))
    ref = smpl(betas=betas, body_pose=rot[:, 1:], global_orient=rot[:, :1])
    with SyncCounter() as c:
        out = gt_smpl(smpl, pose, betas, lbs)
    assert c.total == 0, c.summary()
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    kp = torch.cat([out.joints[:, :, :2] / 2.0, torch.ones(3, 49, 1)], -1)   # keypoints in the crop
    batch = {"pose": pose, "betas": betas, "keypoints": kp}
    valid = torch.tensor([True, False, True])
    with SyncCounter(record_callers=True) as c:
        iuv = render_iuv_targets(smpl, renderer, batch, valid, lbs)
    assert c.total == 1, dict(c.where)
    alone = gt_smpl(smpl, pose[valid], betas[valid], lbs)
    want = renderer(alone.vertices, gt_camera(alone.joints, kp[valid]))
    assert torch.equal(iuv[valid], want) and (want[:, 0] > 0).any() and (iuv[1] == 0).all()
    none = render_iuv_targets(smpl, renderer, batch, torch.zeros(3, dtype=torch.bool), lbs)
    assert none.shape == iuv.shape and (none == 0).all()


def test_invalid_samples_cost_the_iuv_rasterizer_nothing(body_files, monkeypatch: pytest.MonkeyPatch) -> None:
    """The samples without SMPL are rendered off-screen: no face of theirs is a rasterizer candidate."""
    from pymaf.body.smpl import build_smpl
    from pymaf.model.body_output import FastLBS
    from pymaf.render import rasterizer
    from pymaf.render.iuv import IUVRenderer
    from pymaf.train.trainer import render_iuv_targets
    smpl = build_smpl(body_files)
    renderer = IUVRenderer(body_files.uv_processed, size=24)
    batch = {"pose": torch.zeros(2, 72), "betas": torch.zeros(2, 10),
             "keypoints": torch.cat([torch.rand(2, 49, 2) - 0.5, torch.ones(2, 49, 1)], -1)}
    seen = []
    real = rasterizer.rasterize

    def spy(v, f, size, **kw):
        frag = real(v, f, size, **kw)
        seen.append([(frag.face_idx[b] >= 0).sum().item() for b in range(v.shape[0])])
        x = v[..., 0]
        seen.append([bool(((x[b] > 0) & (x[b] < size[1])).any()) for b in range(v.shape[0])])
        return frag
    monkeypatch.setattr("pymaf.render.iuv.rasterize", spy)
    render_iuv_targets(smpl, renderer, batch, torch.tensor([True, False]), FastLBS(smpl, None))
    covered, in_view = seen
    assert covered[0] > 0 and covered[1] == 0 and in_view == [True, False]


def test_loaders_feeding_a_gpu_pin_memory(data_root: Path, tmp_path: Path) -> None:
    from pymaf.train import data_adapter as dada
    from pymaf.train.dist import DistInfo
    for device, pinned in (("cuda", True), ("cpu", False)):
        cfg = _cfg(tmp_path, f"runtime.device={device}")
        assert dada.train_loader(cfg, data_root, DistInfo())[0].pin_memory is pinned
        from pymaf.eval import prepare_evaluation     # the validation loader is the eval.py loader
        assert prepare_evaluation(cfg.data.eval_dataset, data_root, device, num_workers=0).loader.pin_memory is pinned


def test_result_figure_of_a_run(data_root: Path, tmp_path: Path) -> None:
    """The run's picture: the start column uses exactly the weights the trainer starts from; the curve holds
    every validation (last iteration and mean pose) as logged."""
    from pymaf.train import Trainer
    from pymaf.train.result_figure import TILE, initial_model, result_figure, validation_curve, write_png
    cfg = _cfg(tmp_path, "train.max_steps=2", "train.val_every=1", "train.val_at_end=true")
    tr = Trainer(cfg, data_root, progress=False)
    start = {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.fit()
    again = initial_model(cfg, data_root).state_dict()
    assert start.keys() == again.keys() and all(torch.equal(start[k], again[k]) for k in start)
    curves = validation_curve(tmp_path / "tb")
    assert [s for s, _ in curves["mpjpe"]] == [1, 2] and len(curves["pa_mpjpe_mean_pose"]) == 2
    img = result_figure(cfg, data_root, tmp_path / "checkpoints" / "latest.pt", tmp_path / "tb", num_samples=2)
    assert img.dtype == np.uint8 and img.shape[1] == 4 * TILE and img.shape[0] > 2 * TILE
    crops = img[28:28 + TILE]
    assert not np.array_equal(crops[:, :TILE], crops[:, TILE:2 * TILE])    # the GT mesh is drawn on the crop
    assert write_png(img, tmp_path / "result.png").stat().st_size > 1000


def test_learning_rate_schedule():
    """Warm-up is linear from lr/warmup to lr; cosine halves at mid-run and reaches 0 at the end; constant is
    the official lr; a bad schedule name is a config error."""
    from types import SimpleNamespace

    from pymaf.config import ConfigError
    from pymaf.train.trainer import learning_rate
    cos = SimpleNamespace(lr=2.0, lr_warmup=4, lr_schedule="cosine")
    assert [learning_rate(cos, s, 100) for s in range(4)] == [0.5, 1.0, 1.5, 2.0]
    assert learning_rate(cos, 50, 100) == pytest.approx(1.0)
    assert learning_rate(cos, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(cos, 25, 100) == pytest.approx(1.0 + math.cos(math.pi / 4))
    const = SimpleNamespace(lr=2.0, lr_warmup=0, lr_schedule="constant")
    assert {learning_rate(const, s, 100) for s in (0, 50, 99)} == {2.0}
    with pytest.raises(ConfigError, match="train.lr_schedule"):
        load_config(None, ["train.lr_schedule=linear"])
