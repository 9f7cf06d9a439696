"""The PyMAF training loop (spec §3): Adam, losses of §3.2-3.3, IUV targets rendered on the fly (§3.5-3.6),
periodic validation (§3.8), atomic checkpoints with exact resume, AMP / channels_last / compile, DDP.

Exact resume: the checkpoint holds model, optimiser, scaler, RNG states (python, numpy, torch) and the position
in the epoch; the batch order of an epoch depends only on (seed, epoch), and the DataLoader draws its worker
seeds from a private generator seeded per epoch, so a resumed run reproduces the uninterrupted one step for
step (guaranteed with ``data.num_workers=0``; with workers, augmentation is as deterministic as the dataset's
per-sample seeding).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from pymaf.api import load_model
from pymaf.config import Config, save_config, to_dict
from pymaf.errors import CheckpointError, ConfigError, PymafError, RunError, write_error
from pymaf.data.loader import to_device
from pymaf.geometry import axis_angle_to_rotmat, estimate_translation
from pymaf.losses import compute_losses
from pymaf.runtime import apply_runtime
from pymaf.train import data_adapter as dada
from pymaf.train.dist import (DistInfo, all_reduce_sum, any_true, barrier, init_from_env, process_device,
                             sync_buffers, wrap_model)
from pymaf.train.logging import TrainLogger
from pymaf.checkpoint import atomic_save, bare_network, load_error, remove_stale_tmp
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
    val: dict[str, float] = field(default_factory=dict)      # last validation: the protocol's metrics, as
    #                                                          eval.py's JSON names them, and <name>_mean_pose
    best: dict[str, Any] = field(default_factory=dict)       # {'metric', 'value', 'step'} of best.pt
    log_dir: Path = Path(".")


def learning_rate(train: Any, step: int, total_steps: int) -> float:
    """lr of the 0-based ``step``: ``train.lr_warmup`` linear steps up to ``train.lr``, then constant or cosine to 0."""
    if step < train.lr_warmup:
        return train.lr * (step + 1) / train.lr_warmup
    cosine = 0.5 * (1 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))
    return train.lr * (cosine if train.lr_schedule == "cosine" else 1.0)


# ---------------------------------------------------------------------------------------------- IUV targets
@torch.no_grad()
def gt_smpl(smpl: nn.Module, pose: Tensor, betas: Tensor, lbs: nn.Module | None = None) -> Any:
    """GT SMPL output from axis-angle pose [B,72] and betas [B,10]: ``SMPLOutput`` (vertices [B,6890,3],
    joints [B,49,3], smpl_joints [B,24,3]) of the layer ``smpl``.

    Skinned with :class:`~pymaf.model.body_output.FastLBS` (the model's own skinning: the same values as the
    smplx layer up to float rounding, without smplx's per-joint host syncs). ``lbs``: a ``FastLBS(smpl, None)``
    built once by the caller (the trainer); None builds one for this call."""
    from pymaf.body.smpl import SMPLOutput
    from pymaf.model.body_output import FastLBS, joints49
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


# ---------------------------------------------------------------------------------------------- the loop
class Trainer:
    """Builds everything from a Config and runs ``fit()``. One instance per process under torchrun."""

    def __init__(self, cfg: Config, data_root: str | Path, resume: bool = False, progress: bool = True,
                 info: DistInfo | None = None, overwrite: bool = False) -> None:
        self.cfg, self.data_root, self.resume, self.progress = cfg, Path(data_root), resume, progress
        self.info = info or init_from_env(cfg.runtime.device)
        self.device = process_device(cfg.runtime.device, self.info)
        self.log_dir = Path(cfg.train.log_dir)
        self.ckpt_dir = self.log_dir / "checkpoints"
        self.notes: list[str] = []   # what the start did that the log must say (resume changes, overwrite)
        if not resume and self.info.is_main:
            self._claim_log_dir(overwrite)
        seed_everything(cfg.train.seed)     # same init on every rank (DDP also broadcasts rank 0's weights)

        from pymaf.body.files import resolve_body_files
        from pymaf.body.smpl import build_smpl
        from pymaf.render.iuv import IUVRenderer
        body = resolve_body_files(self.data_root)
        self.smpl = build_smpl(body).to(self.device).eval()
        self.renderer = IUVRenderer(body.uv_processed, size=cfg.model.dp_heatmap_size).to(self.device)
        from pymaf.model.body_output import FastLBS
        self.gt_lbs = FastLBS(self.smpl, None).to(self.device)   # GT meshes without smplx's host syncs
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True                  # fixed 224² input: autotune the convolutions
        self.model = load_model(cfg.train.pretrained_checkpoint or None, self.data_root, self.device, cfg,
                                announce=False).train()    # stage 2 starts from pretrained_checkpoint (§3.7)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.train.lr, weight_decay=0.0)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.runtime.amp == "fp16")
        self.loader, self.batch_sampler = dada.train_loader(cfg, self.data_root, self.info)
        self.epoch_len = dada.epoch_length(self.batch_sampler)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.best: dict[str, Any] = {"metric": cfg.train.best_metric, "value": None, "step": None}
        self.saved_step: int | None = None   # step of the latest.pt this run wrote or resumed from
        if self.info.is_main:
            remove_stale_tmp(self.ckpt_dir)  # left by a kill during a checkpoint write; logged
        self.val = self._prepare_validation()
        self._mean_pose: dict[str, float] | None = None
        if resume:
            self._load(self.ckpt_dir / "latest.pt")
        self.net = apply_runtime(self.model, dataclasses.replace(cfg.runtime, device=str(self.device)),
                                 wrap=lambda m: wrap_model(m, self.info, self.device, cfg.train.sync_bn))
        total = cfg.train.num_epochs * self.epoch_len
        self.total_steps = min(total, cfg.train.max_steps) if cfg.train.max_steps > 0 else total
        self.log = TrainLogger(self.log_dir, self.total_steps, self.step, enabled=self.info.is_main,
                               progress=progress)
        for note in self.notes:
            self.log.info(note)

    # -------------------------------------------------------------------------------- checkpoints
    def _claim_log_dir(self, overwrite: bool) -> None:
        """A fresh run never silently replaces another run's checkpoints: refuse, unless ``overwrite``."""
        old = sorted(p.name for p in self.ckpt_dir.glob("*.pt")) if self.ckpt_dir.is_dir() else []
        if not old:
            return
        if not overwrite:
            raise RunError(f"log dir holds another run ({self.ckpt_dir}: {', '.join(old)}): expected an empty "
                           "train.log_dir for a new run; pass --resume to continue that run, --overwrite to "
                           "replace it, or set --opts train.log_dir=<new folder>")
        for name in old:
            (self.ckpt_dir / name).unlink()
        self.notes.append(f"--overwrite: removed the previous run's checkpoints {', '.join(old)} from {self.ckpt_dir}")

    def _check_resume_config(self, saved: dict[str, Any], path: Path) -> None:
        """Settings that would make the resumed run another run are an error; safe ones are applied and logged."""
        from pymaf.config import RESUME_SAFE_KEYS, config_changes
        defaults = to_dict(type(self.cfg)())   # a key added since the run was saved: that run had its default
        saved = {sec: {**defaults[sec], **v} if isinstance(v, dict) and sec in defaults else v for sec, v in saved.items()}
        changes = config_changes(saved, to_dict(self.cfg))
        bad = [c for c in changes if c[0] not in RESUME_SAFE_KEYS]
        if bad:
            listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in bad)
            raise RunError(f"--resume with changed settings ({path}): {listed}. These make it another run: "
                           "resume with the saved settings (see config.yaml in the log dir), or start a new run "
                           "in another train.log_dir")
        if changes:
            self.notes.append("--resume applies changed settings: "
                              + "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changes))

    def _load(self, path: Path) -> None:
        # onto the CPU: the RNG states must stay there, and load_state_dict moves what belongs on the device
        # (Adam's 'step' counters stay on the host, as PyTorch keeps them, so a step never reads them back)
        try:
            st = load_state(path, "cpu")
        except PymafError:
            raise
        except Exception as e:  # noqa: BLE001 - torch.load's errors, re-raised naming the file (truncated, ...)
            raise load_error(path, e) from e
        if "config" in st:
            self._check_resume_config(st["config"], path)
        if st.get("sampler") is not None:  # the saved position: same data, batch size, seed and world size
            try:
                self.batch_sampler.load_state_dict(st["sampler"])
            except (ValueError, KeyError) as e:
                raise RunError(f"--resume: the training data differs from the checkpoint's ({path}): {e}; "
                               "resume with the same datasets, batch size, seed and number of processes") from None
            if (st["sampler"].get("epoch"), st["sampler"].get("batch")) != (st["epoch"], st["batch_idx"]):
                raise RunError(f"--resume: inconsistent checkpoint ({path}): sampler at epoch/batch "
                               f"{st['sampler'].get('epoch')}/{st['sampler'].get('batch')}, trainer at "
                               f"{st['epoch']}/{st['batch_idx']}; the file is damaged")
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
        best = st.get("best") or {}
        if best.get("metric") == self.best["metric"]:
            self.best = dict(best)
        self.saved_step = self.step

    def save(self, name: str = "latest.pt") -> Path | None:
        if not self.info.is_main:
            return None
        state = make_state(bare_network(self.model), self.optimizer, self.scaler, self.step, self.epoch,
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

    # -------------------------------------------------------------------------------- validation
    def _prepare_validation(self) -> Any:
        """The eval.py protocol of ``data.eval_dataset`` (pymaf.eval), built once; checks ``train.best_metric``."""
        from pymaf.eval import POSE3D_DATASETS, prepare_evaluation
        cfg = self.cfg
        if cfg.data.eval_dataset not in POSE3D_DATASETS:
            raise ConfigError(f"data.eval_dataset: validation during training runs a 3D protocol, got "
                              f"{cfg.data.eval_dataset!r}; expected one of {', '.join(POSE3D_DATASETS)}")
        setup = prepare_evaluation(cfg.data.eval_dataset, self.data_root, self.device,
                                   batch_size=cfg.eval.batch_size, num_workers=cfg.eval.num_workers,
                                   crop_backend=cfg.data.crop_backend, max_batches=cfg.train.val_max_batches,
                                   shard=(self.info.rank, self.info.world_size))
        names = setup.protocol["metrics"]
        if cfg.train.best_metric not in names:
            raise ConfigError(f"train.best_metric: {cfg.train.best_metric!r} is not a metric of the "
                              f"{cfg.data.eval_dataset} protocol; expected one of {', '.join(names)}")
        return setup

    def _is_better(self, value: float) -> bool:
        from pymaf.eval import HIGHER_IS_BETTER
        old = self.best["value"]
        if old is None:
            return True
        return value > old if self.best["metric"] in HIGHER_IS_BETTER else value < old

    def _validate(self, predictor: Any) -> dict[str, float]:
        """The protocol's scalar metrics on the validation set. Under DDP every rank evaluates its slice and the
        per-sample sums are all-reduced: the same numbers as one process on the whole set."""
        from pymaf.eval import run_evaluation
        from pymaf.eval.pose3d import means_from_totals
        ev = self.val.new_evaluator()
        run_evaluation(predictor, self.val.loader, ev, self.device, log=None)
        keys, totals = ev.totals()
        means = means_from_totals(keys, all_reduce_sum(totals, self.info))   # sums and count over every rank
        return {k: means[k] for k in self.val.protocol["metrics"] if k in means}

    def run_validation(self) -> dict[str, float]:
        """Run the validation protocol (the same code as eval.py) on the model, on every rank (each its slice);
        keep best.pt on ``train.best_metric``; log and return (rank 0) the metrics, named as in eval.py's JSON,
        and the mean pose's."""
        from pymaf.eval import model_predictor
        model = bare_network(self.model)
        try:
            m = self._validate(model_predictor(model))
            if self._mean_pose is None:  # output 0 is the mean-parameter mesh: the same for every weight
                self._mean_pose = self._validate(model_predictor(model, output=0))
        finally:
            model.train()
        if not self.info.is_main:
            return {}
        self.log.scalars(self.step, m, "eval_error/")
        self.log.scalars(self.step, self._mean_pose, "eval_error_mean_pose/")
        metric = self.best["metric"]
        if self._is_better(m[metric]):
            self.best = {"metric": metric, "value": m[metric], "step": self.step}
            self.save("best.pt")
        shown = "  ".join(f"{k} {v:.1f}" for k, v in m.items())
        mean = "  ".join(f"{k} {v:.1f}" for k, v in self._mean_pose.items())
        self.log.info(f"[val step {self.step}] {self.cfg.data.eval_dataset}: {shown} (mean pose: {mean}); "
                      f"best.pt: {metric} {self.best['value']:.1f} at step {self.best['step']}")
        return {**m, **{f"{k}_mean_pose": v for k, v in self._mean_pose.items()}}

    # -------------------------------------------------------------------------------- one step
    def train_step(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.cfg
        valid = batch["has_smpl"].bool()
        iuv = (render_iuv_targets(self.smpl, self.renderer, batch, valid, self.gt_lbs) if cfg.model.aux_supv_on
               else None)
        if cfg.loss.vert_w > 0:  # §3.1-3.2: GT vertices from the GT SMPL parameters (neutral body), L1 on has_smpl
            batch = {**batch, "verts": gt_smpl(self.smpl, batch["pose"], batch["betas"], self.gt_lbs).vertices}
        out = self.net(batch["img"])                                 # under the runtime options (autocast)
        total, losses = compute_losses(out, batch, iuv, cfg.loss)     # losses in fp32
        # no finiteness check here (a host sync): fit() checks the steps since its last check on log,
        # checkpoint and validation steps and names the first non-finite one (_check_losses)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if cfg.train.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.train.grad_clip)
        for group in self.optimizer.param_groups:   # a function of the step: nothing to save for resume
            group["lr"] = learning_rate(cfg.train, self.step, self.total_steps)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return total.detach(), {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def log_predictions(self, batch: dict[str, Any], n: int = 4) -> None:
        """TensorBoard image ``train/mesh_pred``: the first ``n`` input crops | the predicted mesh over them
        (eval-mode forward, crop camera of spec §1.8)."""
        if not self.info.is_main:
            return
        from pymaf.data.dataset import denormalize_images
        from pymaf.render.overlay import render_crop_overlays
        model = bare_network(self.model)
        model.eval()
        try:
            img = batch["img"][:n].float()
            last = model(img)["smpl_out"][-1]
        finally:
            model.train()
        crops = denormalize_images(img)
        overlays = render_crop_overlays(crops, last["verts"], last["pred_cam"], self.smpl.faces, FOCAL,
                                        device=self.device)
        tiles = [np.concatenate([c, o], axis=0) for c, o in zip(crops, overlays)]
        self.log.image("train/mesh_pred", self.step, torch.from_numpy(np.concatenate(tiles, axis=1)))

    def _batches(self) -> Iterator[dict[str, Any]]:
        """Batches from the current (epoch, batch_in_epoch) onward, epoch after epoch."""
        epoch, start = self.epoch, self.batch_in_epoch
        while True:
            yield from dada.iterate_epoch(self.loader, self.batch_sampler, self.cfg, epoch, start)
            epoch, start = epoch + 1, 0

    def _check_losses(self, window: list[_StepRecord]) -> list[list[float]]:
        """The loss values of the steps in ``window`` (one host read for all of them), or NonFiniteLossError
        naming the first step whose total is not finite (on every rank when any rank has one)."""
        values = torch.stack([r.losses for r in window]).tolist()       # the host sync of a check
        totals = [v[r.names.index("loss")] for r, v in zip(window, values)]
        first = next((i for i, t in enumerate(totals) if not math.isfinite(t)), None)
        if not any_true(first is not None, self.info, self.device):
            return values
        keep = self.checkpoint_note()
        if first is None:
            raise NonFiniteLossError(f"non-finite loss on another process in steps {window[0].step}-"
                                     f"{window[-1].step} (this process's losses are finite); {keep}")
        r = window[first]
        ids = r.sample_index.tolist() if torch.is_tensor(r.sample_index) else r.sample_index
        raise NonFiniteLossError(
            f"non-finite loss at step {r.step} (epoch {r.epoch}, batch {r.batch_in_epoch}; found at the check of "
            f"step {window[-1].step}): {dict(zip(r.names, values[first]))}; batch samples: dataset "
            f"{r.dataset_name}, sample_index {ids}; {keep}")

    def fit(self) -> TrainResult:
        cfg = self.cfg
        res = TrainResult(step=self.step, best=dict(self.best), log_dir=self.log_dir)
        if self.info.is_main:
            try:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                save_config(cfg, self.log_dir / "config.yaml")
            except OSError as e:
                raise write_error(self.log_dir / "config.yaml", e) from e
        val_every = cfg.train.val_every or self.epoch_len
        it = self._batches()
        t_end = time.perf_counter()
        window: list[_StepRecord] = []      # steps since the last loss check (read from the device there)
        last_loss = math.nan
        try:
            while self.step < self.total_steps:
                batch = next(it)
                batch = to_device(batch, self.device)
                t_data = time.perf_counter() - t_end
                total, losses = self.train_step(batch)
                losses = {**losses, "loss": total}     # the total that was back-propagated
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
        res.step, res.best = self.step, dict(self.best)
        return res


def train(cfg: Config, data_root: str | Path, resume: bool = False, progress: bool = True,
          overwrite: bool = False) -> TrainResult:
    """Build a :class:`Trainer` from ``cfg`` and run it."""
    return Trainer(cfg, data_root, resume=resume, progress=progress, overwrite=overwrite).fit()
