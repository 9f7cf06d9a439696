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
from pymaf.errors import CheckpointError, PymafError, RunError, write_error
from pymaf.geometry import axis_angle_to_rotmat, estimate_translation
from pymaf.losses import compute_losses
from pymaf.train import data_adapter as dada
from pymaf.train.dist import DistInfo, any_true, barrier, init_from_env, process_device, unwrap, wrap_model
from pymaf.train.logging import TrainLogger
from pymaf.checkpoint import atomic_save, load_error, remove_stale_tmp
from pymaf.train.state import load_state, make_state, seed_everything, set_rng_state

FOCAL, CROP = 5000.0, 224.0


class NonFiniteLossError(RunError):
    """A loss became NaN/inf; the message names the step and the batch's samples."""


@dataclass
class TrainResult:
    step: int
    losses: list[float] = field(default_factory=list)       # total loss of every step run in this call
    val: dict[str, float] = field(default_factory=dict)      # last validation metrics (mm)
    best_pa_mpjpe: float = math.inf
    log_dir: Path = Path(".")


# ---------------------------------------------------------------------------------------------- IUV targets
@torch.no_grad()
def gt_smpl(smpl: nn.Module, pose: Tensor, betas: Tensor) -> Any:
    """GT SMPL output from axis-angle pose [B,72] and betas [B,10] (vertices [B,6890,3], joints [B,49,3])."""
    rot = axis_angle_to_rotmat(pose.float().reshape(-1, 24, 3))
    return smpl(betas=betas.float(), body_pose=rot[:, 1:], global_orient=rot[:, :1], pose2rot=False)


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
def render_iuv_targets(smpl: nn.Module, renderer: nn.Module, batch: dict[str, Tensor], valid: Tensor) -> Tensor:
    """GT IUV [B,3,S,S] for the ``valid`` samples (zeros elsewhere), on the batch's device (§3.5-3.6)."""
    B, S = valid.shape[0], renderer.size
    out = torch.zeros(B, 3, S, S, device=valid.device)
    if not bool(valid.any()):
        return out
    g = gt_smpl(smpl, batch["pose"][valid], batch["betas"][valid])
    cam = gt_camera(g.joints, batch["keypoints"][valid])
    out[valid] = renderer(g.vertices, cam).to(out.dtype)
    return out


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
        self.model = build_model(cfg, self.data_root, self.device)
        self.model.train()
        if cfg.runtime.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.train.lr, weight_decay=0.0)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.runtime.amp == "fp16")
        self.loader, self.batch_sampler = dada.train_loader(cfg, self.data_root, self.info)
        self.epoch_len = dada.epoch_length(self.batch_sampler)
        self.step, self.epoch, self.batch_in_epoch, self.best = 0, 0, 0, math.inf
        self.saved_step: int | None = None   # step of the latest.pt this run wrote or resumed from
        if self.info.is_main:
            remove_stale_tmp(self.ckpt_dir)  # left by a kill during a checkpoint write; logged
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
        try:
            st = load_state(path, self.device)
        except PymafError:
            raise
        except Exception as e:  # noqa: BLE001 - torch.load's errors, re-raised naming the file (truncated, ...)
            raise load_error(path, e) from e
        try:
            self.model.load_state_dict(st["model"])
            self.optimizer.load_state_dict(st["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            first = str(e).strip().splitlines()[0][:300]
            raise CheckpointError(
                f"--resume: {path} does not fit the configured network (model.arch={self.cfg.model.arch}, "
                f"model.n_iter={self.cfg.model.n_iter}): {first}; resume with the config the run was started "
                f"with ({self.log_dir / 'config.yaml'})") from e
        if st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        set_rng_state(st["rng"])
        self.step, self.epoch, self.batch_in_epoch = st["total_step_count"], st["epoch"], st["batch_idx"]
        self.best = st.get("best_pa_mpjpe", math.inf)
        self.saved_step = self.step

    def save(self, name: str = "latest.pt") -> Path | None:
        if not self.info.is_main:
            return None
        state = make_state(unwrap(self.model), self.optimizer, self.scaler, self.step, self.epoch,
                           self.batch_in_epoch, self.best, to_dict(self.cfg),
                           dada.sampler_state(self.batch_sampler, self.epoch, self.batch_in_epoch))
        path = atomic_save(state, self.ckpt_dir / name)
        if name == "latest.pt":
            self.saved_step = self.step
        return path

    def checkpoint_note(self) -> str:
        """Which checkpoint a stopped run leaves behind, in words (for the NaN stop and write errors)."""
        p = self.ckpt_dir / "latest.pt"
        if self.saved_step is not None and p.is_file():
            return f"the last checkpoint, {p} (step {self.saved_step}), was not overwritten"
        if p.is_file():
            return f"no checkpoint of this run exists ({p} is from an earlier run, not from this one)"
        return (f"no checkpoint exists yet ({p} is written every train.checkpoint_every="
                f"{self.cfg.train.checkpoint_every} steps)")

    # -------------------------------------------------------------------------------- one step
    def train_step(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.cfg
        img = batch["img"]
        if cfg.runtime.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        valid = (batch["valid_fit"] if "valid_fit" in batch else batch["has_smpl"]).bool()
        iuv = render_iuv_targets(self.smpl, self.renderer, batch, valid) if cfg.model.aux_supv_on else None
        with _autocast(self.device, cfg.runtime.amp):
            out = self.net(img)
        total, losses = compute_losses(out, batch, iuv, cfg.loss)     # losses in fp32
        bad = any_true(not bool(torch.isfinite(total)), self.info, self.device)
        if bad:
            ids = batch.get("sample_index")
            names = batch.get("dataset_name")
            raise NonFiniteLossError(
                f"non-finite loss at step {self.step + 1} (epoch {self.epoch}, batch {self.batch_in_epoch}): "
                f"{ {k: float(v.detach()) for k, v in losses.items()} }; batch samples: dataset {names}, "
                f"sample_index {ids.tolist() if torch.is_tensor(ids) else ids}; {self.checkpoint_note()}")
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

    def fit(self) -> TrainResult:
        cfg = self.cfg
        res = TrainResult(step=self.step, best_pa_mpjpe=self.best, log_dir=self.log_dir)
        if self.info.is_main:
            try:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                save_config(cfg, self.log_dir / "config.yaml")
            except OSError as e:
                raise write_error(self.log_dir / "config.yaml", e) from e
        val_every = cfg.train.val_every or self.epoch_len
        it = self._batches()
        t_end = time.perf_counter()
        try:
            while self.step < self.total_steps:
                batch = next(it)
                batch = dada.to_device(batch, self.device)
                t_data = time.perf_counter() - t_end
                total, losses = self.train_step(batch)
                self.step += 1
                self.batch_in_epoch += 1
                if self.batch_in_epoch >= self.epoch_len:
                    self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                res.losses.append(float(total))
                t_now = time.perf_counter()
                t_step = t_now - t_end
                t_end = t_now
                n = batch["img"].shape[0] * self.info.world_size
                if self.step % cfg.train.log_every == 0 or self.step == 1:
                    self.log.scalars(self.step, {k: float(v) for k, v in losses.items()}, "losses/")
                    self.log.scalars(self.step, {"lr": self.optimizer.param_groups[0]["lr"], "data_time": t_data,
                                                 "step_time": t_step, "samples_per_s": n / max(t_step, 1e-9)},
                                     "perf/")
                self.log.progress(1, loss=float(total), sps=n / max(t_step, 1e-9))
                if cfg.train.vis_every > 0 and self.step % cfg.train.vis_every == 0:
                    self.log_predictions(batch)
                if self.step % cfg.train.checkpoint_every == 0:
                    self.save()
                if self.step % val_every == 0 and self.step < self.total_steps:
                    res.val = self.run_validation()
                    t_end = time.perf_counter()
            self.save()
            if cfg.train.val_at_end:
                res.val = self.run_validation()
            barrier(self.info)
        finally:
            self.log.close()
        res.step, res.best_pa_mpjpe = self.step, self.best
        return res


def train(cfg: Config, data_root: str | Path, resume: bool = False, progress: bool = True) -> TrainResult:
    """Build a :class:`Trainer` from ``cfg`` and run it (the function ``train.py`` calls)."""
    return Trainer(cfg, data_root, resume=resume, progress=progress).fit()
