"""Typed configuration: dataclass defaults <- YAML file <- ``--opts KEY=VALUE`` overrides.

Every key is documented where it is defined (the ``help`` metadata, printed by
``python train.py --print-config``). There is no global config object: ``load_config`` returns a
fresh :class:`Config` that callers pass down explicitly.

Errors name the offending key, the file it came from and the expected type::

    ConfigError: configs/x.yaml: unknown key 'train.lrr' (known keys in 'train': batch_size, lr, ...)
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pymaf.errors import ConfigError


def opt(default: Any, help: str) -> Any:  # noqa: A002 - "help" reads best at call sites
    """A dataclass field with a default and a one-line documentation string."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class ModelConfig:
    arch: str = opt("pymaf", "network: 'pymaf' (paper §3) or 'hmr' (the HMR/SPIN baseline of Table 1, spec §1.13)")
    n_iter: int = opt(3, "number of mesh-alignment feedback iterations T (paper §3.2); 1..3")
    mlp_dim: list[int] = opt([256, 128, 64, 5], "MAF extractor point-wise MLP widths (spec §1.5); last = per-point feature size")
    maf_last_slope: float = opt(0.0, "negative slope of the MAF extractor's output activation: 0 = ReLU (official, spec §1.5); > 0 = LeakyReLU, which cannot die (from random weights the ReLU's 5 channels died in the quickstart: all mesh-aligned features 0)")
    deconv_filters: list[int] = opt([256, 256, 256], "channels of the three deconv pyramid stages (spec §1.3)")
    deconv_kernels: list[int] = opt([4, 4, 4], "kernel sizes of the three deconv stages (4, 3 or 2)")
    aux_supv_on: bool = opt(True, "build the auxiliary dense IUV head and its losses (paper §3.3)")
    dp_heatmap_size: int = opt(56, "resolution of the IUV maps predicted by the auxiliary head")
    backbone: str = opt("resnet50", "image trunk (pymaf.model.backbone.BACKBONES): 'resnet18', 'resnet34', 'resnet50' (paper, spec §1.2), 'resnet101' or 'resnet152'")
    input_res: int = opt(224, "side the backbone sees: the 224 crops are resized to it inside the model (bilinear, antialiased); 224 = no resize (official). Fewer pixels, faster steps (the CPU quickstart: 128)")
    backbone_weights: str = opt("", "backbone init: '' random, 'imagenet' (torchvision V1 weights from the torch cache or <data_root>/pretrained_model), or a file path")
    hmr_iters: int = opt(3, "IEF iterations of the HMR baseline (shared weights)")


@dataclass
class RuntimeConfig:
    device: str = opt("cpu", "torch device: 'cpu', 'cuda', 'cuda:1', ...")
    amp: str = opt("none", "autocast dtype: 'none', 'bf16' or 'fp16'")
    channels_last: bool = opt(True, "run the convolutional backbone in channels_last memory format (exact; faster on the CPU and with autocast)")
    compile: bool = opt(False, "wrap the model with torch.compile (for inference with weight freezing)")
    fuse: bool = opt(True, "inference only (eval, demo): run an exact rewritten copy of the network, BatchNorm "
                           "folded into the convolutions and the first deconv as sub-pixel convolution")


@dataclass
class DataConfig:
    train_datasets: dict[str, float] = opt({"synthetic": 1.0}, "training mixture: dataset name -> fraction of every batch (fractions sum to 1)")
    mix_preset: str = opt("", "named mixture instead of train_datasets: 'spin' (0.3 H36M/0.6 ITW/0.1 MPI, spec §4.5) or 'eft' (0.5/0.3/0.2)")
    eval_dataset: str = opt("synthetic-val", "dataset used for validation during training")
    crop_backend: str = opt("spin", "crop resize backend: 'spin' (bytescaled bilinear, the released checkpoint, spec §4.3) or 'head' (PIL bicubic)")
    use_augmentation: bool = opt(True, "enable flip/rotation/scale/pixel-noise augmentation in training (spec §4.4)")
    flip_prob: float = opt(0.5, "probability of a horizontal flip")
    noise_factor: float = opt(0.4, "per-channel pixel multiplier drawn from U[1-f, 1+f]")
    rot_factor: float = opt(30.0, "rotation std in degrees (clipped at 2x)")
    rot_prob: float = opt(0.4, "probability that a rotation is applied at all (official: 0.4)")
    scale_factor: float = opt(0.25, "bbox scale jitter std (clipped at 1 +- factor)")
    num_workers: int = opt(4, "DataLoader worker processes")
    skip_missing_images: bool = opt(False, "skip (and count) unreadable images instead of raising")
    use_fits: bool = opt(False, "use SPIN final fits (data/final_fits) as pseudo-GT, the conference setting (spec §3.4)")
    synthetic_num_train: int = opt(2000, "size of the built-in synthetic training set (generated on first use)")
    synthetic_num_val: int = opt(200, "size of the built-in synthetic validation set")
    synthetic_seed: int = opt(0, "seed of the built-in synthetic dataset")


@dataclass
class LossConfig:
    kp_2d_w: float = opt(300.0, "2D keypoint loss weight (spec §3.1)")
    kp_3d_w: float = opt(300.0, "3D keypoint loss weight")
    shape_w: float = opt(0.06, "SMPL betas loss weight")
    pose_w: float = opt(60.0, "SMPL rotation-matrix loss weight")
    vert_w: float = opt(0.0, "vertex L1 loss weight (0 = off, as official)")
    cam_w: float = opt(1.0, "camera regulariser weight (official 1; SPIN used 60, spec §10.4)")
    uv_w: float = opt(0.5, "U and V smooth-L1 weight (POINT_REGRESSION_WEIGHTS)")
    index_w: float = opt(1.0, "part-index cross-entropy weight (official effective 1; INDEX_WEIGHTS=2 is dead config, §10.4)")
    part_w: float = opt(1.0, "coarse-part cross-entropy weight (official effective 1; PART_WEIGHTS=0.3 is dead config, §10.4)")
    openpose_weight: float = opt(0.0, "confidence multiplier of the 25 OpenPose joints in the 2D loss")
    gt_weight: float = opt(1.0, "confidence multiplier of the 24 GT joints in the 2D loss")
    fix_uv_normalisation: bool = opt(False, "§10.5 fix: U/V loss over foreground only, normalised by the valid count (False keeps the official loss)")
    fix_kp2d_mean: bool = opt(False, "§10.6 fix: average the 2D loss over weighted joints only (False keeps the official /49 mean)")


@dataclass
class TrainConfig:
    lr: float = opt(5e-5, "Adam learning rate (spec §3.7)")
    batch_size: int = opt(64, "batch size per process")
    num_epochs: int = opt(60, "number of epochs")
    epoch_length: int = opt(0, "batches per epoch; 0 = size of the largest training dataset / batch size")
    seed: int = opt(0, "random seed (model init, sampling, augmentation)")
    log_dir: str = opt("logs/run", "output folder: checkpoints/, tb/, config.yaml")
    checkpoint_every: int = opt(1000, "write checkpoints/latest.pt every N steps (and at the end)")
    val_every: int = opt(0, "validate every N steps; 0 = at the end of every epoch")
    log_every: int = opt(20, "TensorBoard scalar logging period in steps")
    vis_every: int = opt(1000, "TensorBoard image logging period in steps")
    grad_clip: float = opt(0.0, "clip the gradient norm to this value; 0 = off (official)")
    lr_schedule: str = opt("constant", "'constant' (official) or 'cosine': from train.lr down to 0 over the run's steps")
    lr_warmup: int = opt(0, "steps of linear warm-up from 0 to train.lr before the schedule (0 = none, official)")
    pretrained_checkpoint: str = opt("", "initialise the model from this checkpoint (stage 2 of the schedule)")
    sync_bn: bool = opt(False, "convert BatchNorm to SyncBatchNorm under DDP")
    max_steps: int = opt(0, "stop after this many steps in total; 0 = run all epochs")
    val_max_batches: int = opt(0, "validate on at most this many eval batches; 0 = the whole eval set")
    val_at_end: bool = opt(True, "validate once more after the last step (and keep best.pt)")
    best_metric: str = opt("pa_mpjpe", "validation metric (eval.py's name) that selects best.pt: errors lower, pck/auc higher is better; spec §3.8: PA-MPJPE")


@dataclass
class EvalConfig:
    batch_size: int = opt(32, "batch size of eval.py and of the validation during training (spec §5.1: 32)")
    num_workers: int = opt(4, "DataLoader workers of eval.py and of the validation during training")


@dataclass
class DemoConfig:
    """``python demo.py``: every key is also a flag (``full_image`` -> ``--full-image``; ``--device`` sets
    ``runtime.device``, default cuda when available); loaded by ``pymaf.demo.run.demo_config``."""
    input: str = opt("", "image file, folder of images, or video file (required)")
    output: str = opt("", "output folder, created (required)")
    checkpoint: str = opt("", "model checkpoint; '' = random init, for testing")
    data_root: str = opt("", "data root; '' = $PYMAF_DATA, else ./data")
    bboxes: str = opt("", "people: JSON boxes per frame (format: pymaf/demo/boxes.py); '' = the detector")
    full_image: bool = opt(False, "people: the whole frame is one person (official single-image behaviour)")
    detector: str = opt("fasterrcnn", "person detector: fasterrcnn | fasterrcnn_v2 | keypointrcnn | fasterrcnn_mobilenet")
    detector_weights: str = opt("", "detector checkpoint; '' = the torch hub cache")
    det_threshold: float = opt(0.5, "detector person score threshold")
    bbox_scale: float = opt(1.2, "square crop side = scale * max(w, h) of a detector/JSON box (training crops are 1.2x the tight box); --full-image uses 1.0")
    sequence: bool = opt(False, "track people across a folder of images (videos are always tracked)")
    batch_size: int = opt(8, "person crops per model call")
    chunk: int = opt(16, "frames read, detected and regressed together")
    focal_length: float = opt(0.0, "full-image focal length in pixels; 0 = 5000 * max(H, W) / 224")
    smooth: bool = opt(False, "videos / --sequence: One-Euro filter rotations, shape and camera")
    smooth_min_cutoff: float = opt(1.0, "smoothing cut-off in Hz; lower = smoother")
    smooth_beta: float = opt(2.0, "smoothing speed coefficient of rotations and shape (translation: 5x); higher = less lag")
    side_view: bool = opt(False, "also render a side view")
    no_render: bool = opt(False, "skip overlays (exports only)")
    save_obj: bool = opt(False, "write an OBJ mesh per person and frame")
    official_pkl: bool = opt(False, "write output.pkl in the official layout")
    export_bvh: bool = opt(False, "videos: a BVH animation per tracked person (SMPL skeleton, Y up, metres; pymaf/demo/animation.py)")
    export_glb: bool = opt(False, "videos: a skinned, animated glTF 2.0 binary per tracked person (Blender, three.js)")
    # the fastest options whose outputs stay within the measured tolerance (README "Speed"): bf16 autocast on top
    # of the exact ones (fuse, channels_last); --fp32, --no-fuse, --no-channels-last turn each off
    runtime: RuntimeConfig = field(default_factory=lambda: RuntimeConfig(amp="bf16"))


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) if not typing.get_args(tp) else str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = ConfigError(f"{source}: key '{key}' expects {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise bad
        return [_coerce(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return {_coerce(k, args[0], f"{key} (a key)", source): _coerce(v, args[1], f"{key}.{k}", source)
                for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads '1e-4' (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"unsupported config type {tp} for '{key}'")  # a programming error, not user input


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _merge(obj: Any, data: dict[str, Any], source: str, prefix: str = "") -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: '{prefix.rstrip('.') or '<top level>'}' must be a mapping, got {data!r}")
    hints = _hints(type(obj))
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{source}: unknown key '{full}' (known keys{' in ' + repr(prefix.rstrip('.')) if prefix else ''}: {known})")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            _merge(getattr(obj, key), value, source, f"{full}.")
        else:
            setattr(obj, key, _coerce(value, tp, full, source))


def apply_overrides(cfg: Any, overrides: list[str], source: str = "--opts") -> None:
    """Apply ``KEY=VALUE`` strings (dotted keys, YAML-parsed values) to ``cfg`` in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{source}: expected KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: cannot parse the value of '{key.strip()}' ({raw!r}) as YAML: "
                              f"{getattr(e, 'problem', None) or e}; quote strings and close brackets, "
                              "e.g. train.lr=1e-4 or model.mlp_dim=[256,128,64,5]") from None
        nested: Any = value
        for part in reversed(key.strip().split(".")):
            nested = {part: nested}
        _merge(cfg, nested, source)


def load_config(yaml_path: str | Path | None = None, overrides: list[str] | None = None, base: Any = None) -> Any:
    """Defaults (``Config()``, or ``base``, e.g. a ``DemoConfig``), then the YAML file (if any), then the
    ``KEY=VALUE`` overrides."""
    cfg = Config() if base is None else base
    if yaml_path is not None:
        path = Path(yaml_path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            with open(path) as f:
                data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            mark, start = getattr(e, "problem_mark", None), getattr(e, "context_mark", None)
            where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
            if start is not None and mark is not None and start.line != mark.line:
                where += f"; opened at line {start.line + 1}"
            what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x)
            raise ConfigError(f"YAML syntax error ({where}): {what or e}; fix the file at that line") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from None
        _merge(cfg, data, str(path))
    apply_overrides(cfg, overrides or [])
    validate(cfg)
    return cfg


# Allowed ranges of numeric keys: key -> (low, high, low inclusive); None = unbounded. Checked by ``validate``
# before any work, so that e.g. ``train.checkpoint_every=0`` is refused at start instead of dividing by zero.
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "model.n_iter": (1, 3, True), "model.dp_heatmap_size": (1, None, True), "model.hmr_iters": (1, None, True),
    "model.input_res": (32, None, True), "model.maf_last_slope": (0, 1, True),
    "data.flip_prob": (0, 1, True), "data.noise_factor": (0, 1, True), "data.rot_factor": (0, None, True),
    "data.rot_prob": (0, 1, True), "data.scale_factor": (0, 1, True), "data.num_workers": (0, None, True),
    "data.synthetic_num_train": (1, None, True), "data.synthetic_num_val": (1, None, True),
    "train.lr": (0, None, False), "train.batch_size": (1, None, True), "train.num_epochs": (1, None, True),
    "train.epoch_length": (0, None, True), "train.checkpoint_every": (1, None, True),
    "train.val_every": (0, None, True), "train.log_every": (1, None, True), "train.vis_every": (0, None, True),
    "train.grad_clip": (0, None, True), "train.lr_warmup": (0, None, True), "train.max_steps": (0, None, True),
    "train.val_max_batches": (0, None, True), "eval.batch_size": (1, None, True), "eval.num_workers": (0, None, True),
    **{f"loss.{f.name}": (0, None, True) for f in dataclasses.fields(LossConfig) if f.type in (float, "float")},
}


def _range_text(low: float | None, high: float | None, low_inclusive: bool) -> str:
    if high is None:
        return f"{'>=' if low_inclusive else '>'} {low}"
    return f"in [{low}, {high}]"


def _check_ranges(cfg: Config) -> None:
    for key, (low, high, inclusive) in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        too_low = low is not None and (value < low if inclusive else value <= low)
        if too_low or (high is not None and value > high) or value != value:  # value != value: NaN
            help_ = next(f.metadata.get("help", "") for f in dataclasses.fields(getattr(cfg, section))
                         if f.name == name)
            raise ConfigError(f"config key {key} = {value!r} is out of range: expected "
                              f"{_range_text(low, high, inclusive)} ({help_})")


def validate(cfg: Config) -> None:
    """Allowed ranges (:data:`RANGES`) and cross-field checks that a type annotation cannot express (a
    ``DemoConfig``: its runtime section)."""
    if cfg.runtime.amp not in ("none", "bf16", "fp16"):
        raise ConfigError(f"runtime.amp must be 'none', 'bf16' or 'fp16', got {cfg.runtime.amp!r}")
    if not isinstance(cfg, Config):
        return
    _check_ranges(cfg)
    m = cfg.model
    if m.arch not in ("pymaf", "hmr"):
        raise ConfigError(f"model.arch must be 'pymaf' or 'hmr', got {m.arch!r}")
    if m.arch == "pymaf" and m.aux_supv_on and m.input_res != 4 * m.dp_heatmap_size:
        raise ConfigError(f"model.input_res={m.input_res} with model.aux_supv_on: expected 4 x model.dp_heatmap_size "
                          f"({4 * m.dp_heatmap_size}) for the IUV maps; set model.aux_supv_on=false for another size")
    if len(m.deconv_filters) != 3 or len(m.deconv_kernels) != 3 or any(k not in (2, 3, 4) for k in m.deconv_kernels):
        raise ConfigError("model.deconv_filters/deconv_kernels must have 3 entries; kernels in {2, 3, 4}")
    if cfg.train.lr_schedule not in ("constant", "cosine"):
        raise ConfigError(f"train.lr_schedule must be 'constant' or 'cosine', got {cfg.train.lr_schedule!r}")
    if cfg.data.crop_backend not in ("spin", "head"):
        raise ConfigError(f"data.crop_backend must be 'spin' or 'head', got {cfg.data.crop_backend!r}")
    if not cfg.data.mix_preset:
        total = sum(cfg.data.train_datasets.values())
        if any(not v >= 0 for v in cfg.data.train_datasets.values()):
            raise ConfigError(f"data.train_datasets fractions must be >= 0, got {cfg.data.train_datasets}")
        if cfg.data.train_datasets and abs(total - 1.0) > 1e-6:
            raise ConfigError(f"data.train_datasets fractions must sum to 1, got {total}")
    elif cfg.data.mix_preset not in ("spin", "eft"):
        raise ConfigError(f"data.mix_preset must be '', 'spin' or 'eft', got {cfg.data.mix_preset!r}")


# Keys that may change on ``--resume`` without making it another run: lengths, intervals, workers, where it runs.
# A change of any other key (model, data, batch size, seed, optimiser, schedule, losses, numerics) is refused.
RESUME_SAFE_KEYS = frozenset({
    "train.num_epochs", "train.max_steps", "train.log_every", "train.checkpoint_every", "train.vis_every",
    "train.val_every", "train.val_at_end", "train.val_max_batches", "train.log_dir", "data.num_workers",
    "eval.batch_size", "eval.num_workers", "runtime.device", "runtime.compile", "runtime.channels_last",
    "runtime.fuse",
})


_DICT_KEYS = frozenset({"data.train_datasets"})  # values that are dicts themselves


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config dict -> {'section.key': value}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and not (prefix and f"{prefix}{k}" in _DICT_KEYS):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) for every key that differs between two ``to_dict`` configs (a key missing on
    one side shows as None there)."""
    a, b = flatten(old), flatten(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (for saving next to checkpoints)."""
    return dataclasses.asdict(cfg)


def describe(cfg: Any, prefix: str = "") -> list[str]:
    """One line per key: ``name = value  # help`` (the documentation of every key)."""
    lines = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            lines.extend(describe(value, f"{prefix}{f.name}."))
        else:
            lines.append(f"{prefix}{f.name} = {value!r}  # {f.metadata.get('help', '')}")
    return lines


def save_config(cfg: Config, path: str | Path) -> None:
    with open(path, "w") as f:
        yaml.safe_dump(to_dict(cfg), f, sort_keys=False)


__all__ = ["RESUME_SAFE_KEYS", "config_changes", "flatten",
           "Config", "ConfigError", "ModelConfig", "RuntimeConfig", "DataConfig", "LossConfig", "TrainConfig",
           "EvalConfig", "DemoConfig", "load_config", "apply_overrides", "save_config", "describe", "to_dict"]
