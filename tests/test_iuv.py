"""IUV maps (spec §3.6) and LSP part masks (spec §5.3) on generated bodies in the real file formats."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from pymaf.render.iuv import IUVRenderer, dp_flip_part_perm, iuv_part_index, load_uv_processed
from pymaf.render.parts import PartRenderer
from pymaf.geometry import cam_to_translation
from pymaf.render.rasterizer import project_vertices, rasterize

CAM = torch.tensor([[0.9, 0.02, 0.05], [0.7, -0.1, 0.0]])


def blob_body(nlon: int = 32, nlat: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A left/right symmetric body-sized ellipsoid (y down, metres) with DensePose-style parts per face.

    nlon is a multiple of 4, so the plane x = 0 is made of mesh edges and no face straddles it. Parts: 6 bands
    along y, (3,4), (5,6), ..., (13,14) with the odd id on the x < 0 side. -> (verts [V,3], faces [F,3], parts [F]).
    """
    th = np.linspace(0, np.pi, nlat + 1)[1:-1]
    ph = np.linspace(0, 2 * np.pi, nlon, endpoint=False)
    ring = np.stack([np.sin(th)[:, None] * np.cos(ph), -np.cos(th)[:, None] + 0 * ph,
                     np.sin(th)[:, None] * np.sin(ph)], -1)
    v = np.concatenate([[[0, -1, 0]], ring.reshape(-1, 3), [[0, 1, 0]]]) * np.array([0.3, 0.85, 0.15])
    f = [[0, 1 + (j + 1) % nlon, 1 + j] for j in range(nlon)]
    ring = [0] * nlon
    for i in range(nlat - 2):
        for j in range(nlon):
            a, b = 1 + i * nlon + j, 1 + i * nlon + (j + 1) % nlon
            f += [[a, b, b + nlon], [a, b + nlon, a + nlon]]
            ring += [i + 1, i + 1]
    last, base = len(v) - 1, 1 + (nlat - 2) * nlon
    f += [[last, base + j, base + (j + 1) % nlon] for j in range(nlon)]
    ring += [nlat - 1] * nlon
    f = np.array(f)
    band = np.array(ring) * 6 // nlat  # parts follow rings of quads (both triangles of a quad share a part)
    parts = 3 + 2 * band + (v[f].mean(1)[:, 0] > 0)
    return v, f, parts


def write_uv_processed(path: Path, faces: np.ndarray, parts: np.ndarray, verts: np.ndarray) -> None:
    """DensePose-format UV_Processed.mat: vertices duplicated per part (as along DensePose's UV seams)."""
    dp_vid, dp_faces = [], np.zeros_like(faces)
    for p in np.unique(parts):
        sel = parts == p
        used, inv = np.unique(faces[sel], return_inverse=True)
        dp_faces[sel] = inv.reshape(-1, 3) + len(dp_vid)
        dp_vid += list(used)
    dp_vid = np.array(dp_vid)
    x, y = verts[dp_vid, 0], verts[dp_vid, 1]
    u = (x - x.min()) / (x.max() - x.min())
    v = (y - y.min()) / (y.max() - y.min())
    scipy.io.savemat(str(path), {"All_FaceIndices": parts[:, None].astype(np.float64),
                                 "All_Faces": (dp_faces + 1).astype(np.float64),
                                 "All_U_norm": u[:, None], "All_V_norm": v[:, None],
                                 "All_vertices": (dp_vid + 1)[None].astype(np.float64)})


def crop_face_idx(verts: torch.Tensor, faces: torch.Tensor, cam: torch.Tensor, size: int) -> torch.Tensor:
    """Face index map [B,size,size] of the plain mesh under the crop camera of §3.6 rasterised at ``size``."""
    k = size / 224
    vp = project_vertices(verts, cam_to_translation(cam), 5000 * k, torch.full((len(cam), 2), 112 * k))
    return rasterize(vp, faces, (size, size)).face_idx


def mirror_map(verts: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """sym [V]: vertex i's mirror image (x -> -x) is vertex sym[i]."""
    m = verts * np.array([-1, 1, 1])
    d = ((m[:, None] - verts[None]) ** 2).sum(-1)
    sym = d.argmin(1)
    assert np.sqrt(d[np.arange(len(verts)), sym]).max() < tol, "mesh is not left/right symmetric"
    return sym


@pytest.fixture(scope="module")
def blob(tmp_path_factory: pytest.TempPathFactory):
    v, f, parts = blob_body()
    path = tmp_path_factory.mktemp("uv") / "UV_Processed.mat"
    write_uv_processed(path, f, parts, v)
    return torch.tensor(v, dtype=torch.float32), torch.tensor(f), parts, path


def test_loader_reads_and_validates(blob, tmp_path: Path) -> None:
    v, f, parts, path = blob
    d = load_uv_processed(path)
    assert d["faces"].min() == 0 and d["faces"].shape == f.shape and np.array_equal(d["face_parts"], parts)
    np.testing.assert_array_equal(d["vert_ids"][d["faces"]], f.numpy())
    bad = tmp_path / "bad.mat"
    scipy.io.savemat(str(bad), {"All_Faces": np.ones((4, 3))})
    with pytest.raises(ValueError, match="All_FaceIndices"):
        load_uv_processed(bad)
    with pytest.raises(FileNotFoundError, match="UV_Processed"):
        IUVRenderer(tmp_path / "UV_Processed.mat")


def check_iuv(iuv: torch.Tensor, fg: torch.Tensor) -> None:
    part = iuv_part_index(iuv)
    assert iuv.shape[1] == 3 and iuv.dtype == torch.float32
    assert torch.equal(part > 0, fg)  # the part map's foreground is the silhouette
    assert ((part[fg] >= 1) & (part[fg] <= 24)).all()
    assert torch.allclose(iuv[:, 0] * 24, part.float(), atol=1e-5)  # exact part ids
    assert (iuv[:, 1:] >= 0).all() and (iuv[:, 1:] <= 1).all()
    assert (iuv.permute(1, 0, 2, 3)[:, ~fg] == 0).all()  # black background


def test_iuv_of_generated_body(blob) -> None:
    v, f, parts, path = blob
    r = IUVRenderer(path, size=56)
    assert len(r.state_dict()) == 0  # buffers stay out of checkpoints
    verts = v[None].repeat(2, 1, 1)
    iuv = r(verts, CAM)
    assert iuv.shape == (2, 3, 56, 56)
    fg = r.rasterize(verts, CAM).face_idx >= 0
    check_iuv(iuv, fg)
    assert fg.float().mean() > 0.1
    # the same silhouette as the plain SMPL-face mesh (here the DensePose faces cover the same surface)
    sil = crop_face_idx(verts, f, CAM, 56) >= 0
    assert (sil != fg).float().mean() < 0.002
    # part ids agree with the faces' parts and U follows x: left side (odd ids) has the smaller U
    part = iuv_part_index(iuv)
    odd = (part % 2 == 1) & fg
    assert iuv[:, 1][odd].mean() < iuv[:, 1][fg & ~odd].mean()


def flip_checks(r: IUVRenderer, verts: torch.Tensor, cam: torch.Tensor, sym: np.ndarray, tol: float) -> None:
    """Flip equivariance; the renderer is two-sided, so the mirror's reversed winding needs no face change."""
    iuv = r(verts, cam)
    cam_f = cam * torch.tensor([1.0, -1.0, 1.0])
    mirrored = verts * torch.tensor([-1.0, 1.0, 1.0])
    # 1) the literal mirror (same vertex identities): the mirrored image with the SAME labels and U/V
    iuv_m = r(mirrored, cam_f)
    diff = (iuv_m - iuv.flip(-1)).abs().amax(1) > 1e-4
    assert diff.float().mean() < tol
    # 2) the flipped body (vertex i takes the place of its mirror vertex, as a flipped SMPL pose does):
    #    the mirrored part map with left/right parts swapped (DensePose pairs 3<->4 ... 23<->24)
    flipped = mirrored[:, torch.as_tensor(sym)]
    part_f = iuv_part_index(r(flipped, cam_f))
    expect = dp_flip_part_perm()[iuv_part_index(iuv).flip(-1)]
    assert (part_f != expect).float().mean() < tol
    assert (part_f % 2 != iuv_part_index(iuv).flip(-1) % 2)[expect > 2].float().mean() > 1 - 5 * tol


def test_iuv_horizontal_flip_swaps_left_right_parts(blob) -> None:
    v, f, parts, path = blob
    r = IUVRenderer(path, size=56)
    flip_checks(r, v[None].repeat(2, 1, 1), CAM, mirror_map(v.numpy()), tol=0.003)


def test_part_renderer_labels_and_mask(blob, tmp_path: Path) -> None:
    v, f, parts, _ = blob
    rng = np.random.default_rng(0)
    F = len(f)
    colour = rng.uniform(0, 1, (F, 3)) * np.array([1.0, 0.92, 0.17])
    tex = np.broadcast_to(colour[None, :, None, None, None, :], (1, F, 2, 2, 2, 3)).astype(np.float32)
    cube = rng.integers(1, 7, (100, 92, 17)).astype(np.float64)
    np.save(tmp_path / "vertex_texture.npy", tex)
    np.save(tmp_path / "cube_parts.npy", cube)
    pr = PartRenderer(tmp_path / "vertex_texture.npy", tmp_path / "cube_parts.npy", f)
    verts = v[None].repeat(2, 1, 1)
    mask, part = pr(verts, CAM, size=64)
    assert mask.dtype == torch.uint8 and part.shape == (2, 64, 64)
    sil = crop_face_idx(verts, f, CAM, 64) >= 0
    assert torch.equal(mask.bool(), sil) and torch.equal(part > 0, sil)
    idx = np.floor(100 * colour).astype(int)
    face_label = torch.tensor(cube[idx[:, 0], idx[:, 1], idx[:, 2]]).long()
    fid = crop_face_idx(verts, f, CAM, 64)
    assert torch.equal(part[sil].long(), face_label[fid[sil]])
    with pytest.raises(ValueError, match="vertex_texture"):
        PartRenderer(tmp_path / "vertex_texture.npy", tmp_path / "cube_parts.npy", f[:-1])


# ----------------------------------------------------------------------------- the built-in body model
@pytest.fixture(scope="module")
def builtin_body(body_files):
    from pymaf.body.builtin import mirror_vertex_indices
    from pymaf.body.model_file import load_smpl_model

    model = load_smpl_model(body_files.smpl["neutral"])
    v = torch.tensor(model["v_template"], dtype=torch.float32) * torch.tensor([1.0, -1.0, -1.0])  # upright (§1.8)
    sym = mirror_vertex_indices(v.numpy().astype(np.float64), tol=1e-4)
    a = np.deg2rad(30.0)  # turn the body about the vertical axis: the image is no longer left/right symmetric
    R = torch.tensor([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]], dtype=torch.float32)
    return body_files, torch.stack([v, v @ R.T]), torch.tensor(model["f"]), sym


def test_iuv_of_builtin_body(builtin_body) -> None:
    files, verts, faces, _ = builtin_body
    r = IUVRenderer(files.uv_processed, size=56)
    assert r.faces.shape[1] == 3 and int(r.vert_ids.max()) < 6890
    iuv = r(verts, CAM)
    fg = r.rasterize(verts, CAM).face_idx >= 0
    check_iuv(iuv, fg)
    assert len(torch.unique(iuv_part_index(iuv))) > 15  # most of the 24 parts are visible
    # the DensePose mesh covers the SMPL surface: same silhouette as the SMPL faces
    sil = crop_face_idx(verts, faces, CAM, 56) >= 0
    assert (sil != fg).float().mean() < 0.002
    # vertex part ids derived from the faces agree with the faces (up to seam vertices)
    vp = r.vert_parts[r.faces]
    assert (vp == r.face_parts[:, None]).float().mean() > 0.9


def test_iuv_flip_of_builtin_body(builtin_body) -> None:
    files, verts, _, sym = builtin_body
    flip_checks(IUVRenderer(files.uv_processed, size=56), verts, CAM, sym, tol=0.003)


def test_part_renderer_on_builtin_body(builtin_body) -> None:
    files, verts, faces, _ = builtin_body
    pr = PartRenderer(files.vertex_texture, files.cube_parts, faces)
    mask, part = pr(verts[:1], CAM[:1], size=96)
    assert torch.equal(mask.bool(), crop_face_idx(verts[:1], faces, CAM[:1], 96) >= 0)
    assert torch.equal(part > 0, mask.bool()) and set(part.unique().tolist()) == set(range(7))
    cols = torch.arange(96).expand(96, 96)
    # the person faces the camera: their left arm (3) and left leg (5) are on the image's right
    assert cols[part[0] == 3].float().mean() > cols[part[0] == 4].float().mean()
    assert cols[part[0] == 5].float().mean() > cols[part[0] == 6].float().mean()


def test_iuv_renderer_makes_one_host_sync(blob) -> None:
    """The IUV targets of a batch cost one host sync (the rasterizer's candidate count), whatever the batch."""
    from pymaf.train.syncs import SyncCounter
    v, f, parts, path = blob
    r = IUVRenderer(path, size=56)
    verts = v[None].repeat(3, 1, 1)
    with SyncCounter(record_callers=True) as c:
        iuv = r(verts, CAM[:1].expand(3, 3))
    assert c.total == 1, dict(c.where)
    assert iuv.shape == (3, 3, 56, 56) and (iuv[:, 0] > 0).any()
