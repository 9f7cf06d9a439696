from pathlib import Path

import pytest

from pymaf.config import Config, ConfigError, describe, load_config, save_config


def test_defaults_are_documented():
    lines = describe(Config())
    assert lines and all("#" in l and not l.endswith("# ") for l in lines)


def test_yaml_then_overrides(tmp_path: Path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lr: 1.0e-4\n  batch_size: 8\nmodel:\n  n_iter: 2\n")
    cfg = load_config(p, ["train.batch_size=4", "data.train_datasets={a: 0.25, b: 0.75}"])
    assert cfg.train.lr == 1e-4 and cfg.train.batch_size == 4 and cfg.model.n_iter == 2
    assert cfg.data.train_datasets == {"a": 0.25, "b": 0.75}
    assert load_config(None, ["train.lr=3e-5"]).train.lr == 3e-5  # YAML 1.1 reads 3e-5 as a string


def test_unknown_key_names_key_and_file(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  lrr: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*'train\.lrr'"):
        load_config(p)
    with pytest.raises(ConfigError, match=r"--opts.*'nope'"):
        load_config(None, ["nope=1"])


def test_wrong_type_names_expected_type(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  batch_size: 'eight'\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*'train\.batch_size' expects int"):
        load_config(p)
    with pytest.raises(ConfigError, match="expects bool"):
        load_config(None, ["model.aux_supv_on=3"])
    with pytest.raises(ConfigError, match=r"model\.mlp_dim\[1\]"):
        load_config(None, ["model.mlp_dim=[256, x]"])


def test_cross_field_validation():
    with pytest.raises(ConfigError, match="sum to 1"):
        load_config(None, ["data.train_datasets={a: 0.5}"])
    with pytest.raises(ConfigError, match="n_iter"):
        load_config(None, ["model.n_iter=5"])


def test_save_round_trip(tmp_path: Path):
    cfg = load_config(None, ["train.lr=0.001", "model.arch=hmr"])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize("path", sorted(Path(__file__).resolve().parents[1].glob("configs/*.yaml")))
def test_shipped_configs_load(path: Path):
    load_config(path)


def test_demo_config_from_yaml_opts_and_flags(tmp_path: Path):
    """DemoConfig: documented keys; defaults <- --cfg YAML <- --opts <- the flags given (demo.py)."""
    from pymaf.config import DemoConfig
    from pymaf.demo.run import demo_config
    from pymaf.errors import InputError
    assert all("#" in l and not l.endswith("# ") for l in describe(DemoConfig()))
    p = tmp_path / "demo.yaml"
    p.write_text("input: a.jpg\noutput: out\nbatch_size: 2\nchunk: 3\nruntime:\n  amp: bf16\n")
    cfg = demo_config(["--cfg", str(p), "--opts", "chunk=5", "runtime.channels_last=true", "--batch-size", "7",
                       "--full-image", "--device", "cpu"])
    assert (cfg.input, cfg.output, cfg.batch_size, cfg.chunk, cfg.full_image) == ("a.jpg", "out", 7, 5, True)
    assert (cfg.runtime.device, cfg.runtime.amp, cfg.runtime.channels_last) == ("cpu", "bf16", True)
    assert not cfg.smooth and cfg.detector == "fasterrcnn"
    with pytest.raises(ConfigError, match=r"--opts.*'smoth'"):
        demo_config(["--input", "a.jpg", "--output", "o", "--opts", "smoth=true"])
    with pytest.raises(ConfigError, match=r"runtime\.amp"):
        demo_config(["--input", "a.jpg", "--output", "o", "--opts", "runtime.amp=fp8"])
    with pytest.raises(InputError, match="--output is required"):
        demo_config(["--input", "a.jpg"])
    # the demo's runtime defaults (bf16 autocast, fuse, channels_last, no compile) survive the device default;
    # each flag turns one off (--compile on), and the flags come after --opts
    rt = demo_config(["--input", "a.jpg", "--output", "o"]).runtime
    assert (rt.amp, rt.fuse, rt.channels_last, rt.compile) == ("bf16", True, True, False)
    rt = demo_config(["--input", "a.jpg", "--output", "o", "--fp32", "--no-fuse", "--no-channels-last", "--compile",
                      "--opts", "runtime.amp=fp16"]).runtime
    assert (rt.amp, rt.fuse, rt.channels_last, rt.compile) == ("none", False, False, True)
