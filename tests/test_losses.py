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


# ------------------------------------------------------------------------------------------------------------
# The mask-weighted losses equal the boolean-indexing formulation they replaced (kept here as the reference).
def _ref_kp3d(pred, gt, has):
    sel = has.bool()
    if not bool(sel.any()):
        return pred.sum() * 0.0
    p, g = pred[sel].float(), gt[sel].float()
    conf, g = g[..., 3:], g[..., :3]
    g = g - 0.5 * (g[:, 2:3] + g[:, 3:4])
    p = p - 0.5 * (p[:, 2:3] + p[:, 3:4])
    return (conf * (p - g) ** 2).mean()


def _ref_smpl(pred_rotmat, pred_betas, gt_pose, gt_betas, valid):
    import torch.nn.functional as F
    from pymaf.geometry import axis_angle_to_rotmat
    sel = valid.bool()
    if not bool(sel.any()):
        zero = pred_rotmat.sum() * 0.0 + pred_betas.sum() * 0.0
        return zero, zero
    gt_rot = axis_angle_to_rotmat(gt_pose[sel].float().reshape(-1, 24, 3))
    return (F.mse_loss(pred_rotmat[sel].float(), gt_rot), F.mse_loss(pred_betas[sel].float(), gt_betas[sel].float()))


def _ref_iuv(dp_out, iuv_gt, valid, fix):
    import torch.nn.functional as F
    pu = dp_out["predict_u"]
    sel = valid.bool()
    B = pu.shape[0]
    if not bool(sel.any()):
        zero = sum(dp_out[k].sum() * 0.0 for k in ("predict_uv_index", "predict_ann_index", "predict_u", "predict_v"))
        return {"index": zero, "ann": zero, "u": zero, "v": zero}
    h, w = pu.shape[-2:]
    gt = iuv_gt[sel]
    if gt.shape[-2:] != (h, w):
        gt = F.interpolate(gt, size=(h, w), mode="nearest")
    index, ann, umap, vmap = iuv_img2map(gt)
    out = {"index": F.cross_entropy(dp_out["predict_uv_index"][sel].float(), index),
           "ann": F.cross_entropy(dp_out["predict_ann_index"][sel].float(), ann)}
    onehot = F.one_hot(index, 25).permute(0, 3, 1, 2).bool()
    if fix:
        onehot = onehot & (index > 0)[:, None]
        denom = torch.tensor(float(int(sel.sum())))
    else:
        denom = torch.tensor(float(B))
    for key, pred, target in (("u", dp_out["predict_u"], umap), ("v", dp_out["predict_v"], vmap)):
        d = F.smooth_l1_loss(pred[sel].float(), target, reduction="none")
        out[key] = (d * onehot).sum() / denom
    return out


def _random_case(B: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    from pymaf.geometry import axis_angle_to_rotmat
    outputs = {"smpl_out": [], "dp_out": []}
    for _ in range(3):
        outputs["smpl_out"].append({"kp_2d": r(B, 49, 2).requires_grad_(), "kp_3d": r(B, 49, 3).requires_grad_(),
                                    "rotmat": axis_angle_to_rotmat(r(B, 24, 3)).requires_grad_(),
                                    "pred_shape": r(B, 10).requires_grad_(), "pred_cam": r(B, 3).requires_grad_()})
    outputs["dp_out"].append({"predict_uv_index": r(B, 25, 8, 8).requires_grad_(),
                              "predict_ann_index": r(B, 15, 8, 8).requires_grad_(),
                              "predict_u": r(B, 25, 8, 8).requires_grad_(),
                              "predict_v": r(B, 25, 8, 8).requires_grad_()})
    iuv = torch.zeros(B, 3, 16, 16)                      # rendered at 16, losses at 8 (nearest resize)
    iuv[:, 0] = torch.randint(0, 25, (B, 16, 16), generator=g) / 24.0
    iuv[:, 1:] = torch.rand(B, 2, 16, 16, generator=g) * (iuv[:, :1] > 0)
    kp = torch.cat([r(B, 49, 2), torch.rand(B, 49, 1, generator=g)], -1)
    batch = {"keypoints": kp, "pose_3d": torch.cat([r(B, 24, 3), torch.rand(B, 24, 1, generator=g)], -1),
             "pose": r(B, 72), "betas": r(B, 10)}
    return outputs, batch, iuv


@pytest.mark.parametrize("masks", [([1, 0, 1, 1, 0], [0, 1, 1, 0, 0]), ([0, 0, 0, 0, 0], [1, 1, 0, 1, 1]),
                                   ([1, 1, 1, 1, 1], [0, 0, 0, 0, 0]), ([0, 0, 0, 0, 0], [0, 0, 0, 0, 0])])
@pytest.mark.parametrize("fix", [False, True])
def test_masked_losses_equal_the_indexing_formulation(masks, fix: bool) -> None:
    """Every loss term and the total, and their gradients, equal the boolean-indexing reference to 1e-6
    relative, on a random batch with mixed, all-true and all-false masks."""
    smpl_mask, p3d_mask = (torch.tensor(m, dtype=torch.bool) for m in masks)
    outputs, batch, iuv = _random_case(5, seed=int(smpl_mask.sum()) * 7 + int(p3d_mask.sum()))
    batch.update(has_smpl=smpl_mask.float(), has_pose_3d=p3d_mask.float())
    cfg = LossConfig(fix_uv_normalisation=fix, fix_kp2d_mean=fix)
    total, d = compute_losses(outputs, batch, iuv, cfg)
    ref = {}
    for i in (1, 2):
        o = outputs["smpl_out"][i]
        lp, lb = _ref_smpl(o["rotmat"], o["pred_shape"], batch["pose"], batch["betas"], smpl_mask)
        ref[f"loss_regr_pose_{i}"], ref[f"loss_regr_betas_{i}"] = cfg.pose_w * lp, cfg.shape_w * lb
        ref[f"loss_keypoints_{i}"] = cfg.kp_2d_w * keypoint_2d_loss(o["kp_2d"], batch["keypoints"],
                                                                    cfg.openpose_weight, cfg.gt_weight, fix)
        ref[f"loss_keypoints_3d_{i}"] = cfg.kp_3d_w * _ref_kp3d(o["kp_3d"][:, 25:], batch["pose_3d"], p3d_mask)
        ref[f"loss_cam_{i}"] = cfg.cam_w * camera_loss(o["pred_cam"])
    uv = _ref_iuv(outputs["dp_out"][-1], iuv, smpl_mask, fix)
    ref.update({"loss_U-1": cfg.uv_w * uv["u"], "loss_V-1": cfg.uv_w * uv["v"],
                "loss_IndexUV-1": cfg.index_w * uv["index"], "loss_segAnn-1": cfg.part_w * uv["ann"]})
    ref_total = torch.stack(list(ref.values())).sum()
    assert set(d) == set(ref) | {"loss"}
    for k, v in ref.items():
        assert d[k].item() == pytest.approx(v.item(), rel=1e-6, abs=1e-9), k
        if not smpl_mask.any() and k.startswith(("loss_regr", "loss_U", "loss_V", "loss_Index", "loss_seg")):
            assert d[k].item() == 0.0
    assert total.item() == pytest.approx(ref_total.item(), rel=1e-6)
    leaves = [t for o in outputs["smpl_out"] + outputs["dp_out"] for t in o.values()]
    grads = torch.autograd.grad(total, leaves, allow_unused=True)
    ref_grads = torch.autograd.grad(ref_total, leaves, allow_unused=True)
    for a, b in zip(grads, ref_grads):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_masked_losses_ignore_non_finite_ground_truth_of_unselected_samples() -> None:
    """Ground truth of samples the masks leave out never reaches a value or a gradient (as with indexing)."""
    outputs, batch, iuv = _random_case(3, seed=3)
    mask = torch.tensor([True, False, True])
    batch.update(has_smpl=mask.float(), has_pose_3d=mask.float())
    for key in ("pose", "betas", "pose_3d"):
        batch[key][1] = float("nan")
    iuv[1] = float("nan")
    total, _ = compute_losses(outputs, batch, iuv, LossConfig())
    leaves = [t for o in outputs["smpl_out"] + outputs["dp_out"] for t in o.values()]
    grads = torch.autograd.grad(total, leaves, allow_unused=True)
    assert torch.isfinite(total) and all(torch.isfinite(g).all() for g in grads if g is not None)


def test_masked_mean_and_fine_to_coarse_table() -> None:
    from pymaf.losses import INDEX2MASK, _fine_to_coarse, masked_mean
    x = torch.arange(12.0).reshape(3, 2, 2)
    assert masked_mean(x, torch.tensor([True, False, True])).item() == x[[0, 2]].mean().item()
    assert masked_mean(x, torch.zeros(3, dtype=torch.bool)).item() == 0.0
    want = [0] * 25
    for coarse, fines in enumerate(INDEX2MASK):
        for f in fines:
            want[f] = coarse
    assert _fine_to_coarse(torch.device("cpu")).tolist() == want


def test_losses_make_no_host_sync() -> None:
    """The whole loss computation (forward and backward) runs without a host sync or a host-to-device copy."""
    from pymaf.train.syncs import SyncCounter
    outputs, batch, iuv = _random_case(4, seed=1)
    batch.update(has_smpl=torch.tensor([1.0, 0, 1, 0]), has_pose_3d=torch.tensor([0.0, 0, 1, 1]))
    for fix in (False, True):
        with SyncCounter(record_callers=True) as c:
            total, _ = compute_losses(outputs, batch, iuv, LossConfig(fix_uv_normalisation=fix))
            total.backward()
        assert c.total == 0, dict(c.where)
