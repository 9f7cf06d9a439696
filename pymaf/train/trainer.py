"""The PyMAF training loop (spec §3): Adam, losses of §3.2-3.3, IUV targets rendered on the fly (§3.5-3.6),
periodic validation (§3.8), atomic checkpoints with exact resume, AMP / channels_last / compile, DDP.

Exact resume: the checkpoint holds model, optimiser, scaler, RNG states (python, numpy, torch) and the position
in the epoch; the batch order of an epoch depends only on (seed, epoch), and the DataLoader draws its worker
seeds from a private generator seeded per epoch, so a resumed run reproduces the uninterrupted one step for
step (guaranteed with ``data.num_workers=0``; with workers, augmentation is as deterministic as the dataset's
per-sample seeding).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from pymaf.config import Config, save_config, to_dict
from pymaf.errors import RunError
from pymaf.geometry import axis_angle_to_rotmat, estimate_translation
from pymaf.losses import compute_losses
from pymaf.train import data_adapter as dada
from pymaf.train.dist import (DistInfo, any_true, barrier, init_from_env, process_device, sync_buffers, unwrap,
                             wrap_model)
from pymaf.train.logging import TrainLogger
from pymaf.checkpoint import atomic_save
from pymaf.train.state import load_state, make_state, seed_everything, set_rng_state

FOCAL, CROP = 5000.0, 224.0


class NonFiniteLossError(RunError):
    """A loss became NaN/inf; the message names the step and the batch's samples."""


# the losses are read from the device on log / checkpoint / validation steps, and at least this often
MAX_UNCHECKED_STEPS = 1000


@dataclass
class _StepRecord:
    """What a deferred loss check needs of one step: where it was, its losses [K] (names), its samples."""
    step: int
    epoch: int
    batch_in_epoch: int
    names: tuple[str, ...]
    losses: Tensor
    dataset_name: Any
    sample_index: Any


@dataclass
class TrainResult:
    step: int
    losses: list[float] = field(default_factory=list)       # total loss of every step run in this call
    val: dict[str, float] = field(default_factory=dict)      # last validation metrics (mm)
    best_pa_mpjpe: float = math.inf
    log_dir: Path = Path(".")


# ---------------------------------------------------------------------------------------------- IUV targets
@torch.no_grad()
def gt_smpl(smpl: nn.Module, pose: Tensor, betas: Tensor, lbs: nn.Module | None = None) -> Any:
    """GT SMPL output from axis-angle pose [B,72] and betas [B,10]: ``SMPLOutput`` (vertices [B,6890,3],
    joints [B,49,3], smpl_joints [B,24,3]) of the layer ``smpl``.

    Skinned with :class:`~pymaf.model.smpl_head.FastLBS` (the model's own skinning: the same values as the
    smplx layer up to float rounding, without smplx's per-joint host syncs). ``lbs``: a ``FastLBS(smpl, None)``
    built once by the caller (the trainer); None builds one for this call."""
    from pymaf.body.smpl import SMPLOutput
    from pymaf.model.smpl_head import FastLBS, joints49
    if lbs is None:
        lbs = FastLBS(smpl, None)
    dtype = smpl.v_template.dtype
    rot = axis_angle_to_rotmat(pose.to(dtype).reshape(-1, 24, 3))
    with torch.autocast(device_type=pose.device.type, enabled=False):
        verts, smpl_joints = lbs.full(smpl, betas.to(dtype), rot)
        return SMPLOutput(vertices=verts, joints=joints49(smpl, verts, smpl_joints), smpl_joints=smpl_joints)


@torch.no_grad()
def gt_camera(joints49: Tensor, keypoints: Tensor) -> Tensor:
    """Crop camera [B,3] (s, tx, ty) fitting the GT joints [B,49,3] to the normalised GT keypoints [B,49,3]
    (§3.5): 24 GT joints, crop pixels 112·(k+1), weights √conf, then s = 2f/(224·tz)."""
    kp = keypoints.float().clone()
    kp[..., :2] = 0.5 * CROP * (kp[..., :2] + 1)
    t = estimate_translation(joints49[:, 25:].float(), kp[:, 25:], FOCAL, CROP)
    s = 2 * FOCAL / (CROP * t[:, 2].clamp_min(1e-3))
    return torch.stack([s, t[:, 0], t[:, 1]], dim=-1)


@torch.no_grad()
def render_iuv_targets(smpl: nn.Module, renderer: nn.Module, batch: dict[str, Tensor], valid: Tensor,
                       lbs: nn.Module | None = None) -> Tensor:
    """GT IUV [B,3,S,S] for the ``valid`` [B] samples (zeros elsewhere), on the batch's device (§3.5-3.6).

    The whole batch is rendered and the invalid samples are zeroed: static shapes, one host sync (the
    rasterizer's), the same maps for the valid samples as rendering them alone. ``lbs``: see :func:`gt_smpl`."""
    keep = valid.bool()
    g = gt_smpl(smpl, torch.where(keep[:, None], batch["pose"].float(), 0.0),
                torch.where(keep[:, None], batch["betas"].float(), 0.0), lbs)
    cam = gt_camera(g.joints, batch["keypoints"])
    away = torch.zeros_like(cam)                 # invalid samples: a camera far off to the side, so that their
    away[:, 0], away[:, 1:] = 0.9, 1e3           # meshes cover no pixel and cost the rasterizer nothing
    iuv = renderer(g.vertices, torch.where(keep[:, None], cam, away)).float()
    return torch.where(keep[:, None, None, None], iuv, 0.0)


# ---------------------------------------------------------------------------------------------- validation
@torch.no_grad()
def validate(model: nn.Module, smpl: nn.Module, loader: Any, device: torch.device, amp: str = "none",
             max_batches: int = 0) -> dict[str, float]:
    """MPJPE / PA-MPJPE / PVE (mm) of the last iteration and of iteration 0 (the mean pose), H36M-regressor
    joints, pelvis-centred, J14 (§5.1). GT meshes come from the GT SMPL parameters of the val set."""
    from pymaf.body.joints import H36M_TO_J14
    from pymaf.metrics import mpjpe, pa_mpjpe, pve
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    n = 0
    idx = torch.as_tensor(H36M_TO_J14, device=device)

    def joints(v: Tensor) -> Tensor:
        j = smpl.h36m_joints(v)
        return j[:, idx] - j[:, :1]
    for bi, batch in enumerate(loader):
        if max_batches and bi >= max_batches:
            break
        batch = dada.to_device(batch, device)
        with _autocast(device, amp):
            out = model(batch["img"])
        smpl_out = out["smpl_out"] if isinstance(out, dict) else out
        g = gt_smpl(smpl, batch["pose"], batch["betas"])
        gj = joints(g.vertices)
        for name, o in (("", smpl_out[-1]), ("_mean_pose", smpl_out[0])):
            v = o["verts"].float()
            pj = joints(v)
            for key, val in (("mpjpe", mpjpe(pj, gj)), ("pa_mpjpe", pa_mpjpe(pj, gj)), ("pve", pve(v, g.vertices))):
                sums[key + name] = sums.get(key + name, 0.0) + float(torch.as_tensor(val).sum()) * 1000
        n += batch["img"].shape[0]
    model.train(was_training)
    return {k: v / max(n, 1) for k, v in sums.items()}


def _autocast(device: torch.device, amp: str) -> Any:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def build_model(cfg: Config, data_root: Path, device: torch.device) -> nn.Module:
    """The network of ``cfg.model`` on ``device`` (``pymaf.api.load_model``; stage 2 loads
    ``train.pretrained_checkpoint``, §3.7)."""
    try:
        from pymaf.api import load_model
    except ImportError:  # the api module is not there yet: build the network directly
        load_model = None
    if load_model is not None:
        return load_model(checkpoint=cfg.train.pretrained_checkpoint or None, data_root=data_root,
                          device=str(device), cfg=cfg)
    from pymaf.body.files import resolve_body_files
    from pymaf.body.smpl import build_smpl, load_mean_params
    from pymaf.model.pymaf import PyMAF
    body = resolve_body_files(data_root)
    model = PyMAF(cfg.model, build_smpl(body), load_mean_params(body.mean_params))
    if cfg.train.pretrained_checkpoint:  # ours or the official one (key mapping of pymaf.checkpoint)
        from pymaf.checkpoint import load_checkpoint
        load_checkpoint(model, cfg.train.pretrained_checkpoint)
    return model.to(device)


# ---------------------------------------------------------------------------------------------- the loop
class Trainer:
    """Builds everything from a Config and runs ``fit()``. One instance per process under torchrun."""

    def __init__(self, cfg: Config, data_root: str | Path, resume: bool = False, progress: bool = True,
                 info: DistInfo | None = None) -> None:
        self.cfg, self.data_root, self.resume, self.progress = cfg, Path(data_root), resume, progress
        self.info = info or init_from_env(cfg.runtime.device)
        self.device = process_device(cfg.runtime.device, self.info)
        self.log_dir = Path(cfg.train.log_dir)
        self.ckpt_dir = self.log_dir / "checkpoints"
        seed_everything(cfg.train.seed)     # same init on every rank (DDP also broadcasts rank 0's weights)

        from pymaf.body.files import resolve_body_files
        from pymaf.body.smpl import build_smpl
        from pymaf.render.iuv import IUVRenderer
        body = resolve_body_files(self.data_root)
        self.smpl = build_smpl(body).to(self.device).eval()
        self.renderer = IUVRenderer(body.uv_processed, size=cfg.model.dp_heatmap_size).to(self.device)
        from pymaf.model.smpl_head import FastLBS
        self.gt_lbs = FastLBS(self.smpl, None).to(self.device)   # GT meshes without smplx's host syncs
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True                  # fixed 224² input: autotune the convolutions
        self.model = build_model(cfg, self.data_root, self.device)
        self.model.train()
        if cfg.runtime.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.train.lr, weight_decay=0.0)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.runtime.amp == "fp16")
        self.loader, self.batch_sampler = dada.train_loader(cfg, self.data_root, self.info)
        self.epoch_len = dada.epoch_length(self.batch_sampler)
        self.step, self.epoch, self.batch_in_epoch, self.best = 0, 0, 0, math.inf
        if resume:
            self._load(self.ckpt_dir / "latest.pt")
        self.net = wrap_model(self.model, self.info, self.device, cfg.train.sync_bn)
        if cfg.runtime.compile:
            self.net = torch.compile(self.net)
        total = cfg.train.num_epochs * self.epoch_len
        self.total_steps = min(total, cfg.train.max_steps) if cfg.train.max_steps > 0 else total
        self.log = TrainLogger(self.log_dir, self.total_steps, self.step, enabled=self.info.is_main,
                               progress=progress)

    # -------------------------------------------------------------------------------- checkpoints
    def _load(self, path: Path) -> None:
        # onto the CPU: the RNG states must stay there, and load_state_dict moves what belongs on the device
        # (Adam's 'step' counters stay on the host, as PyTorch keeps them, so a step never reads them back)
        st = load_state(path, "cpu")
        self.model.load_state_dict(st["model"])
        self.optimizer.load_state_dict(st["optimizer"])
        if st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        set_rng_state(st["rng"])
        self.step, self.epoch, self.batch_in_epoch = st["total_step_count"], st["epoch"], st["batch_idx"]
        self.best = st.get("best_pa_mpjpe", math.inf)

    def save(self, name: str = "latest.pt") -> Path | None:
        if not self.info.is_main:
            return None
        state = make_state(unwrap(self.model), self.optimizer, self.scaler, self.step, self.epoch,
                           self.batch_in_epoch, self.best, to_dict(self.cfg),
                           dada.sampler_state(self.batch_sampler, self.epoch, self.batch_in_epoch))
        return atomic_save(state, self.ckpt_dir / name)

    # -------------------------------------------------------------------------------- one step
    def train_step(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.cfg
        img = batch["img"]
        if cfg.runtime.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        valid = (batch["valid_fit"] if "valid_fit" in batch else batch["has_smpl"]).bool()
        iuv = (render_iuv_targets(self.smpl, self.renderer, batch, valid, self.gt_lbs) if cfg.model.aux_supv_on
               else None)
        with _autocast(self.device, cfg.runtime.amp):
            out = self.net(img)
        total, losses = compute_losses(out, batch, iuv, cfg.loss)     # losses in fp32
        # no finiteness check here (a host sync): fit() checks the steps since its last check on log,
        # checkpoint and validation steps and names the first non-finite one (_check_losses)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if cfg.train.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return total.detach(), {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def log_predictions(self, batch: dict[str, Any], n: int = 4) -> None:
        """TensorBoard image ``train/mesh_pred``: the first ``n`` input crops | the predicted mesh over them
        (eval-mode forward, crop camera of spec §1.8)."""
        if not self.info.is_main:
            return
        from pymaf.data.dataset import IMG_MEAN, IMG_STD
        from pymaf.geometry import cam_to_translation
        from pymaf.render.overlay import render_overlay
        model = unwrap(self.model)
        model.eval()
        try:
            img = batch["img"][:n].float()
            last = model(img.contiguous(memory_format=torch.channels_last) if self.cfg.runtime.channels_last
                         else img)["smpl_out"][-1]
        finally:
            model.train()
        crops = (img.permute(0, 2, 3, 1).cpu().numpy() * IMG_STD + IMG_MEAN).clip(0, 1)
        crops = (crops * 255).round().astype("uint8")
        trans = cam_to_translation(last["pred_cam"].float(), FOCAL, CROP)
        tiles = [np.concatenate([c, render_overlay(c, last["verts"][i:i + 1].float(), self.smpl.faces,
                                                    trans[i:i + 1], FOCAL, (CROP / 2, CROP / 2),
                                                    device=self.device)], axis=0)
                 for i, c in enumerate(crops)]
        self.log.image("train/mesh_pred", self.step, torch.from_numpy(np.concatenate(tiles, axis=1)))

    def _batches(self) -> Iterator[dict[str, Any]]:
        """Batches from the current (epoch, batch_in_epoch) onward, epoch after epoch."""
        epoch, start = self.epoch, self.batch_in_epoch
        while True:
            yield from dada.iterate_epoch(self.loader, self.batch_sampler, self.cfg, epoch, start)
            epoch, start = epoch + 1, 0

    def run_validation(self) -> dict[str, float]:
        if not self.info.is_main:
            return {}
        if not hasattr(self, "val_loader"):
            self.val_loader = dada.eval_loader(self.cfg, self.data_root)
        m = validate(unwrap(self.model), self.smpl, self.val_loader, self.device, self.cfg.runtime.amp,
                     self.cfg.train.val_max_batches)
        self.log.scalars(self.step, m, "eval_error/")
        if m.get("pa_mpjpe", math.inf) < self.best:
            self.best = m["pa_mpjpe"]
            self.save("best.pt")
        self.log.info(f"[val step {self.step}] MPJPE {m['mpjpe']:.1f} PA-MPJPE {m['pa_mpjpe']:.1f} "
                      f"PVE {m['pve']:.1f} mm (mean pose: MPJPE {m['mpjpe_mean_pose']:.1f} "
                      f"PA-MPJPE {m['pa_mpjpe_mean_pose']:.1f})")
        return m

    def _check_losses(self, window: list[_StepRecord]) -> list[list[float]]:
        """The loss values of the steps in ``window`` (one host read for all of them), or NonFiniteLossError
        naming the first step whose total is not finite (on every rank when any rank has one)."""
        values = torch.stack([r.losses for r in window]).tolist()       # the host sync of a check
        totals = [v[r.names.index("loss")] for r, v in zip(window, values)]
        first = next((i for i, t in enumerate(totals) if not math.isfinite(t)), None)
        if not any_true(first is not None, self.info, self.device):
            return values
        keep = f"The last good checkpoint ({self.ckpt_dir / 'latest.pt'}) was not overwritten."
        if first is None:
            raise NonFiniteLossError(f"non-finite loss on another process in steps {window[0].step}-"
                                     f"{window[-1].step} (this process's losses are finite). {keep}")
        r = window[first]
        ids = r.sample_index.tolist() if torch.is_tensor(r.sample_index) else r.sample_index
        raise NonFiniteLossError(
            f"non-finite loss at step {r.step} (epoch {r.epoch}, batch {r.batch_in_epoch}; found at the check of "
            f"step {window[-1].step}): {dict(zip(r.names, values[first]))}; batch samples: dataset "
            f"{r.dataset_name}, sample_index {ids}. {keep}")

    def fit(self) -> TrainResult:
        cfg = self.cfg
        res = TrainResult(step=self.step, best_pa_mpjpe=self.best, log_dir=self.log_dir)
        if self.info.is_main:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.log_dir / "config.yaml")
        val_every = cfg.train.val_every or self.epoch_len
        it = self._batches()
        t_end = time.perf_counter()
        window: list[_StepRecord] = []      # steps since the last loss check (read from the device there)
        last_loss = math.nan
        try:
            while self.step < self.total_steps:
                batch = next(it)
                batch = dada.to_device(batch, self.device)
                t_data = time.perf_counter() - t_end
                total, losses = self.train_step(batch)
                window.append(_StepRecord(self.step + 1, self.epoch, self.batch_in_epoch, tuple(losses),
                                          torch.stack([v.reshape(()) for v in losses.values()]),
                                          batch.get("dataset_name"), batch.get("sample_index")))
                self.step += 1
                self.batch_in_epoch += 1
                if self.batch_in_epoch >= self.epoch_len:
                    self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                t_now = time.perf_counter()
                t_step = t_now - t_end
                t_end = t_now
                n = batch["img"].shape[0] * self.info.world_size
                log_now = self.step % cfg.train.log_every == 0 or self.step == 1
                if (log_now or self.step % cfg.train.checkpoint_every == 0 or self.step % val_every == 0
                        or self.step >= self.total_steps or len(window) >= MAX_UNCHECKED_STEPS):
                    values = self._check_losses(window)
                    res.losses.extend(v[r.names.index("loss")] for r, v in zip(window, values))
                    last_loss = res.losses[-1]
                    if log_now:
                        self.log.scalars(self.step, dict(zip(window[-1].names, values[-1])), "losses/")
                        self.log.scalars(self.step, {"lr": self.optimizer.param_groups[0]["lr"],
                                                     "data_time": t_data, "step_time": t_step,
                                                     "samples_per_s": n / max(t_step, 1e-9)}, "perf/")
                    window = []
                self.log.progress(1, loss=last_loss, sps=n / max(t_step, 1e-9))
                if cfg.train.vis_every > 0 and self.step % cfg.train.vis_every == 0:
                    self.log_predictions(batch)
                if self.step % cfg.train.checkpoint_every == 0:
                    self.save()
                if self.step % val_every == 0 and self.step < self.total_steps:
                    sync_buffers(self.model, self.info)   # BN statistics of rank 0 on every rank (DDP broadcasts none)
                    res.val = self.run_validation()
                    t_end = time.perf_counter()
            self.save()
            if cfg.train.val_at_end:
                sync_buffers(self.model, self.info)
                res.val = self.run_validation()
            barrier(self.info)
        finally:
            self.log.close()
        res.step, res.best_pa_mpjpe = self.step, self.best
        return res


def train(cfg: Config, data_root: str | Path, resume: bool = False, progress: bool = True) -> TrainResult:
    """Build a :class:`Trainer` from ``cfg`` and run it (the function ``train.py`` calls)."""
    return Trainer(cfg, data_root, resume=resume, progress=progress).fit()
