"""Loss values against hand computations on tiny tensors (spec §3.2-3.3)."""
from __future__ import annotations

import math

import pytest
import torch

from pymaf.config import LossConfig
from pymaf.losses import (camera_loss, compute_losses, iuv_img2map, iuv_losses, keypoint_2d_loss,
                          keypoint_3d_loss, smpl_losses)


def test_keypoint_2d_official_and_fixed_mean() -> None:
    pred = torch.zeros(1, 49, 2)
    gt = torch.zeros(1, 49, 3)
    gt[0, 30] = torch.tensor([1.0, 2.0, 1.0])   # GT joint: err (1 + 4) * conf 1
    gt[0, 3] = torch.tensor([3.0, 0.0, 1.0])    # OpenPose joint: weight 0 by default
    assert torch.isclose(keypoint_2d_loss(pred, gt), torch.tensor(5.0 / 98))
    assert torch.isclose(keypoint_2d_loss(pred, gt, openpose_weight=1.0), torch.tensor(14.0 / 98))
    assert torch.isclose(keypoint_2d_loss(pred, gt, gt_weight=2.0), torch.tensor(10.0 / 98))
    assert torch.isclose(keypoint_2d_loss(pred, gt, fix_mean=True), torch.tensor(5.0 / 2))  # Σconf = 1 joint


def test_keypoint_3d_midhip_centred_and_masked() -> None:
    pred = torch.zeros(2, 24, 3)
    gt = torch.zeros(2, 24, 4)
    gt[..., 3] = 1
    gt[:, :, 0] += 5.0                   # a global offset: removed by mid-hip centring
    gt[0, 10, 1] = 2.0                   # one joint off by 2 in y -> 4 / (24*3)
    gt[1, 10, 1] = 100.0                 # sample 1 has no 3D pose: ignored
    has = torch.tensor([True, False])
    assert torch.isclose(keypoint_3d_loss(pred, gt, has), torch.tensor(4.0 / 72))
    assert keypoint_3d_loss(pred, gt, torch.tensor([False, False])).item() == 0.0


def test_smpl_losses_identity_and_values() -> None:
    B = 2
    rot = torch.eye(3).expand(B, 24, 3, 3).clone()
    gt_pose = torch.zeros(B, 72)
    gt_pose[0, 3 * 5 + 2] = math.pi / 2   # joint 5: 90° about z -> R - I has 4 entries of magnitude 1, one ... 
    betas, gt_betas = torch.zeros(B, 10), torch.zeros(B, 10)
    gt_betas[0, 0] = 3.0
    gt_betas[1, 0] = 100.0                # invalid sample: ignored
    valid = torch.tensor([True, False])
    l_pose, l_betas = smpl_losses(rot, betas, gt_pose, gt_betas, valid)
    # Rz(90) - I = [[-1,-1,0],[1,-1,0],[0,0,0]]: squared sum 4, over 24*9 entries
    assert torch.isclose(l_pose, torch.tensor(4.0 / 216), atol=1e-6)
    assert torch.isclose(l_betas, torch.tensor(9.0 / 10))
    z1, z2 = smpl_losses(rot, betas, gt_pose, gt_betas, torch.tensor([False, False]))
    assert z1.item() == 0.0 and z2.item() == 0.0


def test_camera_loss() -> None:
    cam = torch.tensor([[0.1, 0.0, 0.0], [0.0, 1.0, 1.0]])
    assert torch.isclose(camera_loss(cam), torch.tensor((math.exp(-2.0) + 1.0) / 2))


def test_iuv_img2map_parts() -> None:
    iuv = torch.zeros(1, 3, 1, 4)
    iuv[0, 0, 0] = torch.tensor([0, 1, 2, 24]) / 24.0
    iuv[0, 1, 0] = torch.tensor([0, 0.5, 0.25, 1.0])
    index, ann, umap, vmap = iuv_img2map(iuv)
    assert index.tolist() == [[[0, 1, 2, 24]]]
    assert ann.tolist() == [[[0, 1, 1, 14]]]      # parts 1,2 -> coarse 1; 23,24 -> 14
    assert umap.shape == (1, 25, 1, 4) and umap[0, 1, 0, 1] == 0.5 and umap[0, 2, 0, 2] == 0.25
    assert umap.sum() == pytest.approx(1.75) and vmap.sum() == 0


def test_iuv_losses_hand_computed() -> None:
    B, H, W = 2, 1, 2
    iuv = torch.zeros(B, 3, H, W)
    iuv[0, 0, 0, 1] = 3 / 24.0          # sample 0: pixel 1 is part 3 with U = 0.5, V = 0.2
    iuv[0, 1, 0, 1] = 0.5
    iuv[0, 2, 0, 1] = 0.2
    dp = {"predict_uv_index": torch.zeros(B, 25, H, W), "predict_ann_index": torch.zeros(B, 15, H, W),
          "predict_u": torch.zeros(B, 25, H, W), "predict_v": torch.zeros(B, 25, H, W)}
    dp["predict_u"][0, 0, 0, 0] = 2.0    # background pixel, channel 0 predicted 2: smooth-L1 = 1.5 (included!)
    valid = torch.tensor([True, False])
    out = iuv_losses(dp, iuv, valid)
    assert torch.isclose(out["index"], torch.tensor(math.log(25)))     # uniform logits
    assert torch.isclose(out["ann"], torch.tensor(math.log(15)))
    # official: (1.5 [bg channel 0] + 0.5*0.5^2) / full batch 2
    assert torch.isclose(out["u"], torch.tensor((1.5 + 0.125) / 2))
    assert torch.isclose(out["v"], torch.tensor(0.5 * 0.2 ** 2 / 2))
    fixed = iuv_losses(dp, iuv, valid, fix_uv_normalisation=True)
    assert torch.isclose(fixed["u"], torch.tensor(0.125 / 1))          # fg only, / B' = 1
    none = iuv_losses(dp, iuv, torch.tensor([False, False]))
    assert all(v.item() == 0.0 for v in none.values())


def test_compute_losses_sums_iterations_1_to_n() -> None:
    B = 2
    cfg = LossConfig()

    def out(scale: float) -> dict:
        return {"kp_2d": torch.full((B, 49, 2), scale), "kp_3d": torch.zeros(B, 49, 3),
                "rotmat": torch.eye(3).expand(B, 24, 3, 3), "pred_shape": torch.zeros(B, 10),
                "pred_cam": torch.ones(B, 3)}
    outputs = {"smpl_out": [out(100.0), out(0.0), out(1.0)], "dp_out": []}
    batch = {"keypoints": torch.cat([torch.zeros(B, 49, 2), torch.ones(B, 49, 1)], -1),
             "pose_3d": torch.zeros(B, 24, 4), "has_pose_3d": torch.zeros(B, dtype=torch.bool),
             "pose": torch.zeros(B, 72), "betas": torch.zeros(B, 10), "has_smpl": torch.ones(B, dtype=torch.bool)}
    total, d = compute_losses(outputs, batch, None, cfg)
    assert "loss_keypoints_0" not in d                       # mean-param output skipped
    assert d["loss_keypoints_1"].item() == 0.0
    # iteration 2: GT joints 25..48 (conf 1) err 1 per coord -> 300 * 24*2 / (49*2)
    assert torch.isclose(d["loss_keypoints_2"], torch.tensor(300 * 48 / 98))
    cam = math.exp(-20.0)
    assert torch.isclose(total, torch.tensor(300 * 48 / 98 + 2 * cam))
    assert set(d) >= {"loss_regr_pose_1", "loss_regr_betas_2", "loss_keypoints_3d_1", "loss_cam_2", "loss"}


def test_vertex_loss_key_changes_the_loss_by_the_l1_of_the_smpl_samples():
    from pymaf.config import LossConfig
    from pymaf.losses import vertex_loss
    g = torch.Generator().manual_seed(0)
    B, V = 3, 50
    pred, gt = torch.randn(B, V, 3, generator=g), torch.randn(B, V, 3, generator=g)
    valid = torch.tensor([True, False, True])
    want = (pred[[0, 2]] - gt[[0, 2]]).abs().mean()            # official: L1 mean over B'·V·3 (has_smpl)
    assert torch.isclose(vertex_loss(pred, gt, valid), want)
    assert vertex_loss(pred, gt, torch.zeros(B, dtype=torch.bool)).item() == 0.0

    def out(v: torch.Tensor) -> dict:
        return {"kp_2d": torch.zeros(B, 49, 2), "kp_3d": torch.zeros(B, 49, 3), "verts": v,
                "rotmat": torch.eye(3).expand(B, 24, 3, 3), "pred_shape": torch.zeros(B, 10),
                "pred_cam": torch.ones(B, 3)}
    outputs = {"smpl_out": [out(pred), out(pred), out(gt)], "dp_out": []}
    batch = {"keypoints": torch.zeros(B, 49, 3), "pose_3d": torch.zeros(B, 24, 4),
             "has_pose_3d": torch.zeros(B), "pose": torch.zeros(B, 72), "betas": torch.zeros(B, 10),
             "has_smpl": valid.float(), "verts": gt}
    t0, d0 = compute_losses(outputs, batch, None, LossConfig(vert_w=0.0))
    t2, d2 = compute_losses(outputs, batch, None, LossConfig(vert_w=2.0))
    assert "loss_verts_1" not in d0
    assert torch.isclose(d2["loss_verts_1"], 2 * want) and d2["loss_verts_2"].item() == 0.0
    assert torch.isclose(t2 - t0, 2 * want)
    with pytest.raises(ValueError, match="verts"):
        compute_losses(outputs, {k: v for k, v in batch.items() if k != "verts"}, None, LossConfig(vert_w=1.0))
