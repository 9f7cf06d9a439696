"""Skinned, animated glTF 2.0 binary (.glb) of a ``SkeletonAnimation`` (axis convention and what the skin
is: ``pymaf.demo.animation``), built with ``pygltflib``.

Contents: nodes 0..23 are the joints (SMPL hierarchy, rest translations = rest offsets, root at its rest
position), node 24 the mesh (rest T-pose of the person's shape, uint32 triangles, rest-pose vertex normals)
with one skin: the 24 joints, inverse bind matrices ``T(-J_i)`` (the rest pose has identity rotations) and
every non-zero SMPL skinning weight, largest first, 4 per ``JOINTS_n``/``WEIGHTS_n`` set (``JOINTS_0`` holds
the 4 largest: what viewers limited to one set use; three.js renormalises them). One animation ("smpl"):
LINEAR samplers keyed at ``frame / fps`` seconds, a rotation channel per joint and a translation channel for
the root.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib as gl
from scipy.spatial.transform import Rotation

from pymaf.demo.animation import SkeletonAnimation


class _Blob:
    """Accumulates binary data into one buffer: one bufferView + accessor per array (4-byte aligned)."""

    def __init__(self, doc: gl.GLTF2) -> None:
        self.doc, self.data = doc, bytearray()

    def add(self, arr: np.ndarray, gl_type: str, component: int, target: int | None = None,
            minmax: bool = False) -> int:
        raw = np.ascontiguousarray(arr).tobytes()
        view = gl.BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(raw), target=target)
        self.data += raw + b"\0" * (-len(raw) % 4)
        self.doc.bufferViews.append(view)
        count = arr.shape[0]
        acc = gl.Accessor(bufferView=len(self.doc.bufferViews) - 1, componentType=component, count=count,
                          type=gl_type)
        if minmax:
            flat = arr.reshape(count, -1)
            acc.min, acc.max = flat.min(0).tolist(), flat.max(0).tolist()
        self.doc.accessors.append(acc)
        return len(self.doc.accessors) - 1


def skin_sets(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SMPL weights [V,J] -> (joints [S,V,4] uint8, weights [S,V,4] float32): every non-zero weight of a
    vertex, largest first, in S = ceil(max non-zeros / 4) sets of 4 (unused slots: joint 0, weight 0)."""
    nnz = int((weights > 0).sum(1).max())
    n = max(4, -(-nnz // 4) * 4)
    order = np.argsort(-weights, axis=1, kind="stable")[:, :n]
    w = np.take_along_axis(weights, order, axis=1)
    j = np.where(w > 0, order, 0)
    w = np.where(w > 0, w, 0.0)
    S = n // 4
    return (j.reshape(-1, S, 4).transpose(1, 0, 2).astype(np.uint8),
            w.reshape(-1, S, 4).transpose(1, 0, 2).astype(np.float32))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit area-weighted vertex normals [V,3] of a triangle mesh (vertices [V,3], faces [F,3])."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = np.zeros_like(vertices)
    for c in range(3):
        np.add.at(n, faces[:, c], fn)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(length > 0, n / np.where(length > 0, length, 1.0), np.array([0.0, 0.0, 1.0]))


def write_glb(path: str | Path, anim: SkeletonAnimation) -> None:
    """Write ``anim`` as a skinned, animated .glb at ``path`` (parent folders created)."""
    doc = gl.GLTF2(asset=gl.Asset(generator="pymaf", version="2.0"))
    blob = _Blob(doc)
    J = len(anim.names)
    offsets = anim.offsets
    children: dict[int, list[int]] = {i: [] for i in range(J)}
    for i, p in enumerate(anim.parents):
        if p >= 0:
            children[int(p)].append(i)
    for i in range(J):
        doc.nodes.append(gl.Node(name=anim.names[i], translation=offsets[i].tolist(),
                                 children=children[i] or []))

    pos = blob.add(anim.rest_vertices.astype(np.float32), gl.VEC3, gl.FLOAT, gl.ARRAY_BUFFER, minmax=True)
    idx = blob.add(anim.faces.astype(np.uint32).reshape(-1), gl.SCALAR, gl.UNSIGNED_INT, gl.ELEMENT_ARRAY_BUFFER)
    nrm = blob.add(vertex_normals(anim.rest_vertices, anim.faces).astype(np.float32), gl.VEC3, gl.FLOAT,
                   gl.ARRAY_BUFFER)
    attrs = gl.Attributes(POSITION=pos, NORMAL=nrm)
    for s, (js, ws) in enumerate(zip(*skin_sets(anim.skin_weights))):
        setattr(attrs, f"JOINTS_{s}", blob.add(js, gl.VEC4, gl.UNSIGNED_BYTE, gl.ARRAY_BUFFER))
        setattr(attrs, f"WEIGHTS_{s}", blob.add(ws, gl.VEC4, gl.FLOAT, gl.ARRAY_BUFFER))
    doc.meshes.append(gl.Mesh(name="smpl", primitives=[gl.Primitive(attributes=attrs, indices=idx)]))
    ibm = np.tile(np.eye(4), (J, 1, 1))
    ibm[:, :3, 3] = -anim.rest_joints
    # glTF matrices are column-major: the row-major bytes of M^T
    ibm_acc = blob.add(ibm.transpose(0, 2, 1).astype(np.float32), gl.MAT4, gl.FLOAT)
    doc.skins.append(gl.Skin(name="smpl", joints=list(range(J)), skeleton=0, inverseBindMatrices=ibm_acc))
    doc.nodes.append(gl.Node(name="body", mesh=0, skin=0))
    doc.scenes.append(gl.Scene(name="pymaf", nodes=[0, J]))
    doc.scene = 0

    times = blob.add((anim.frame_indices / anim.fps).astype(np.float32), gl.SCALAR, gl.FLOAT, minmax=True)
    quats = Rotation.from_matrix(anim.rotations.reshape(-1, 3, 3)).as_quat().reshape(-1, J, 4)  # x, y, z, w
    samplers = [gl.AnimationSampler(input=times, interpolation="LINEAR",
                                    output=blob.add(anim.root_position.astype(np.float32), gl.VEC3, gl.FLOAT))]
    channels = [gl.AnimationChannel(sampler=0, target=gl.AnimationChannelTarget(node=0, path="translation"))]
    for i in range(J):
        samplers.append(gl.AnimationSampler(input=times, interpolation="LINEAR",
                                            output=blob.add(quats[:, i].astype(np.float32), gl.VEC4, gl.FLOAT)))
        channels.append(gl.AnimationChannel(sampler=i + 1,
                                            target=gl.AnimationChannelTarget(node=i, path="rotation")))
    doc.animations.append(gl.Animation(name="smpl", samplers=samplers, channels=channels))
    doc.buffers.append(gl.Buffer(byteLength=len(blob.data)))
    doc.set_binary_blob(bytes(blob.data))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    doc.save_binary(str(path))
