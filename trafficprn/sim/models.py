"""Low-poly 3D vehicle models in the vehicle frame (x forward, y left, z up, metres).

A `Mesh` is a set of planar quads with outward normals and a material each. Decals
(windows, lights, plates, wheels) lie on a parent face and are drawn just after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trafficprn.sim.sumo import Vehicle
from trafficprn.types import FloatArray

# materials
BODY, GLASS, TYRE, HEADLIGHT, TAILLIGHT, PLATE_FRONT, PLATE_BACK, TRIM, CLOTHES, SKIN, CARGO, HUB = range(12)

PALETTE_BGR: dict[str, tuple[int, int, int]] = {
    "white": (232, 234, 234), "black": (28, 28, 30), "grey": (105, 107, 110), "silver": (182, 184, 182),
    "red": (35, 35, 185), "blue": (150, 70, 30), "green": (50, 115, 40), "yellow": (35, 200, 235),
    "orange": (25, 120, 235), "brown": (35, 60, 100), "beige": (150, 188, 210),
}


@dataclass
class Mesh:
    quads: FloatArray  # (Q, 4, 3)
    normals: FloatArray  # (Q, 3)
    material: np.ndarray  # (Q,) int
    parent: np.ndarray  # (Q,) int: index of the face whose depth and culling a decal shares
    bias: FloatArray  # (Q,) depth bias in m (decals > 0 draw after their parent)


class _Builder:
    def __init__(self) -> None:
        self.quads: list[FloatArray] = []
        self.normals: list[FloatArray] = []
        self.material: list[int] = []
        self.parent: list[int] = []
        self.bias: list[float] = []

    def face(self, quad: FloatArray, centre: FloatArray, material: int) -> int:
        n = np.cross(quad[1] - quad[0], quad[3] - quad[0])
        n = n / (np.linalg.norm(n) + 1e-12)
        if np.dot(n, quad.mean(axis=0) - centre) < 0:
            n = -n
        self.quads.append(quad)
        self.normals.append(n)
        self.material.append(material)
        self.parent.append(len(self.quads) - 1)
        self.bias.append(0.0)
        return len(self.quads) - 1

    def decal(self, face: int, u0: float, u1: float, v0: float, v1: float, material: int, level: int = 1) -> int:
        q = self.quads[face]

        def p(u: float, v: float) -> FloatArray:
            return np.asarray((1 - u) * (1 - v) * q[0] + u * (1 - v) * q[1] + u * v * q[2] + (1 - u) * v * q[3])

        n = self.normals[face]
        quad = np.array([p(u0, v0), p(u1, v0), p(u1, v1), p(u0, v1)]) + n * 0.01 * level
        self.quads.append(quad)
        self.normals.append(n)
        self.material.append(material)
        self.parent.append(self.parent[face])
        self.bias.append(0.001 * level)
        return len(self.quads) - 1

    def frustum(self, bottom: tuple[float, float, float, float], top: tuple[float, float, float, float],
                z0: float, z1: float, material: int, with_top: bool = True) -> dict[str, int]:
        """Box or frustum; rects are (x0, x1, y0, y1). Face u runs along the face, v up."""
        bx0, bx1, by0, by1 = bottom
        tx0, tx1, ty0, ty1 = top
        c = np.array([(bx0 + bx1 + tx0 + tx1) / 4, (by0 + by1 + ty0 + ty1) / 4, (z0 + z1) / 2])
        a = np.array
        faces = {
            "front": a([[bx1, by0, z0], [bx1, by1, z0], [tx1, ty1, z1], [tx1, ty0, z1]]),
            "back": a([[bx0, by1, z0], [bx0, by0, z0], [tx0, ty0, z1], [tx0, ty1, z1]]),
            "left": a([[bx0, by1, z0], [bx1, by1, z0], [tx1, ty1, z1], [tx0, ty1, z1]]),
            "right": a([[bx1, by0, z0], [bx0, by0, z0], [tx0, ty0, z1], [tx1, ty0, z1]]),
        }
        if with_top:
            faces["top"] = a([[tx0, ty0, z1], [tx1, ty0, z1], [tx1, ty1, z1], [tx0, ty1, z1]])
        return {k: self.face(q.astype(np.float64), c, material) for k, q in faces.items()}

    def box(self, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, material: int) -> dict[str, int]:
        return self.frustum((x0, x1, y0, y1), (x0, x1, y0, y1), z0, z1, material)

    def mesh(self) -> Mesh:
        return Mesh(np.array(self.quads), np.array(self.normals), np.array(self.material, dtype=np.int64),
                    np.array(self.parent, dtype=np.int64), np.array(self.bias))


def _wheels(b: _Builder, side: dict[str, int], xs: list[float], length: float, z_bottom: float, r: float) -> None:
    """Wheel decals on the lower side faces (u along the face from its first corner)."""
    for face, sign in ((side["left"], 1), (side["right"], -1)):
        for x in xs:
            u = (x + length / 2) / length if sign > 0 else (length / 2 - x) / length
            du = r / length
            h = max(1e-6, side_h(b, face))
            v0, v1 = -z_bottom / h, min(1.0, (2 * r - z_bottom) / h)
            b.decal(face, u - du, u + du, v0, v1, TYRE)
            vm = (r - z_bottom) / h
            b.decal(face, u - du * 0.5, u + du * 0.5, vm - 0.5 * r / h, vm + 0.5 * r / h, HUB, level=2)


def side_h(b: _Builder, face: int) -> float:
    q = b.quads[face]
    return float(q[3][2] - q[0][2])


def _plates(b: _Builder, front: int | None, back: int | None, w_face: float, h_face: float, z_plate: float,
            z0: float, plate_w: float = 0.52, plate_h: float = 0.12) -> None:
    v0 = (z_plate - z0) / h_face
    v1 = (z_plate + plate_h - z0) / h_face
    du = plate_w / w_face / 2
    if front is not None:
        b.decal(front, 0.5 - du, 0.5 + du, v0, v1, PLATE_FRONT)
    if back is not None:
        b.decal(back, 0.5 - du, 0.5 + du, v0, v1, PLATE_BACK)


def build_mesh(v: Vehicle, rng: np.random.Generator) -> Mesh:
    """A mesh for vehicle `v` (its variant and dimensions), with small random proportions."""
    b = _Builder()
    L, W, H = v.length_m, v.width_m, v.height_m
    x0, x1, y0, y1 = -L / 2, L / 2, -W / 2, W / 2
    j = rng.uniform(-1, 1, 4) * 0.06
    if v.cls == "car":
        belt = {"sedan": 0.82, "hatch": 0.85, "suv": 1.0, "van": 1.05}[v.variant] + j[0]
        zc = 0.2
        # lower body: hood and boot slope in a little, sides tuck in towards the belt line
        low = b.frustum((x0, x1, y0, y1), (x0 + 0.08, x1 - 0.14, y0 + 0.04, y1 - 0.04), zc, belt, BODY)
        hl = b.decal(low["front"], 0.06, 0.26, 0.55, 0.85, HEADLIGHT)
        b.decal(low["front"], 0.74, 0.94, 0.55, 0.85, HEADLIGHT)
        b.decal(low["back"], 0.04, 0.2, 0.55, 0.85, TAILLIGHT)
        b.decal(low["back"], 0.8, 0.96, 0.55, 0.85, TAILLIGHT)
        del hl
        b.decal(low["front"], 0.0, 1.0, 0.0, 0.2, TRIM)  # bumpers
        b.decal(low["back"], 0.0, 1.0, 0.0, 0.2, TRIM)
        b.decal(low["front"], 0.32, 0.68, 0.5, 0.78, TRIM)  # grille
        for k in ("left", "right"):
            b.decal(low[k], 0.0, 1.0, 0.0, 0.12, TRIM)  # sills
        _wheels(b, low, [x1 - 0.85 - j[1], x0 + 0.85 + j[1]], L, zc, 0.32)
        _plates(b, low["front"], low["back"], W, belt - zc, 0.3, zc)
        cab_shape = {"sedan": (0.95, 1.35, 1.35, 1.9), "hatch": (0.25, 1.15, 0.4, 1.75),
                     "suv": (0.35, 1.25, 0.45, 1.8), "van": (0.1, 0.8, 0.12, 1.2)}[v.variant]
        ins = 0.1 if v.variant != "van" else 0.04
        c = b.frustum((x0 + cab_shape[0], x1 - cab_shape[1], y0 + 0.04, y1 - 0.04),
                      (x0 + cab_shape[2] + j[2], x1 - cab_shape[3] + j[3], y0 + ins + 0.04, y1 - ins - 0.04), belt, H,
                      BODY)
        for k in ("left", "right"):
            b.decal(c[k], 0.08, 0.47, 0.08, 0.85, GLASS)
            b.decal(c[k], 0.53, 0.92, 0.08, 0.85, GLASS)
        b.decal(c["front"], 0.06, 0.94, 0.06, 0.9, GLASS)
        b.decal(c["back"], 0.1, 0.9, 0.1, 0.85, GLASS)
    elif v.cls == "bus":
        zc = 0.3
        body = b.box(x0, x1, y0, y1, zc, H, BODY)
        for k in ("left", "right"):
            n = 6
            for i in range(n):
                u0 = 0.05 + i * 0.9 / n
                b.decal(body[k], u0 + 0.01, u0 + 0.9 / n - 0.01, 0.38, 0.82, GLASS)
        b.decal(body["front"], 0.05, 0.95, 0.3, 0.88, GLASS)
        b.decal(body["back"], 0.15, 0.85, 0.55, 0.85, GLASS)
        b.decal(body["front"], 0.05, 0.2, 0.08, 0.16, HEADLIGHT)
        b.decal(body["front"], 0.8, 0.95, 0.08, 0.16, HEADLIGHT)
        b.decal(body["back"], 0.04, 0.14, 0.1, 0.25, TAILLIGHT)
        b.decal(body["back"], 0.86, 0.96, 0.1, 0.25, TAILLIGHT)
        b.decal(body["top"], 0.1, 0.9, 0.2, 0.8, TRIM)
        _wheels(b, body, [x1 - 2.6, x0 + 3.0], L, zc, 0.5)
        _plates(b, body["front"], body["back"], W, H - zc, 0.45, zc)
    elif v.cls == "truck":
        cab_l = 2.3
        zc = 0.45
        cab = b.box(x1 - cab_l, x1, y0 + 0.05, y1 - 0.05, zc, 2.9 + j[0], BODY)
        b.decal(cab["front"], 0.06, 0.94, 0.52, 0.9, GLASS)
        b.decal(cab["left"], 0.55, 0.95, 0.52, 0.88, GLASS)
        b.decal(cab["right"], 0.05, 0.45, 0.52, 0.88, GLASS)
        b.decal(cab["front"], 0.05, 0.2, 0.08, 0.18, HEADLIGHT)
        b.decal(cab["front"], 0.8, 0.95, 0.08, 0.18, HEADLIGHT)
        chassis = b.box(x0, x1 - cab_l, y0 + 0.3, y1 - 0.3, 0.45, 1.05, TRIM)
        _wheels(b, cab, [cab_l / 2 - 1.1], cab_l, zc, 0.5)
        cargo = b.box(x0, x1 - cab_l - 0.12, y0, y1, 1.05, H, CARGO)
        b.decal(cargo["back"], 0.49, 0.51, 0.02, 0.98, TRIM)
        b.decal(cargo["back"], 0.05, 0.15, 0.0, 0.06, TAILLIGHT)
        b.decal(cargo["back"], 0.85, 0.95, 0.0, 0.06, TAILLIGHT)
        del chassis
        for x in (x0 + 1.2, x0 + 2.3):
            b.box(x - 0.5, x + 0.5, y0 + 0.02, y0 + 0.35, 0.0, 1.0, TYRE)
            b.box(x - 0.5, x + 0.5, y1 - 0.35, y1 - 0.02, 0.0, 1.0, TYRE)
        _plates(b, cab["front"], cargo["back"], W - 0.1, 2.45, 0.55, zc)
    else:  # motorcycle / bicycle with rider
        bike = v.cls == "bicycle"
        r = 0.34 if bike else 0.32
        tw = 0.04 if bike else 0.07
        for x in (x1 - r, x0 + r):
            b.box(x - r, x + r, -tw, tw, 0.0, 2 * r, TYRE)
        frame = b.box(x0 + r, x1 - r, -0.05 if bike else -0.17, 0.05 if bike else 0.17, 0.35, 0.8, TRIM if bike else BODY)
        if not bike:  # tank and fairing in front of the rider: the bike's big painted part
            b.frustum((0.05, x1 - 0.12, -0.24, 0.24), (0.1, x1 - 0.3, -0.2, 0.2), 0.55, 1.0, BODY)
        if not bike:
            b.decal(frame["back"], 0.2, 0.8, 0.1, 0.4, TAILLIGHT)
            _plates(b, None, frame["back"], 0.34, 0.45, 0.4, 0.35, plate_w=0.2, plate_h=0.14)
            b.decal(frame["front"], 0.2, 0.8, 0.5, 0.9, HEADLIGHT)
        torso = b.frustum((-0.35, 0.05, -0.2, 0.2), (-0.2, 0.1, -0.18, 0.18), 0.85, 1.45, CLOTHES)
        del torso
        b.box(-0.2, 0.05, -0.12, 0.12, 1.45, 1.72, TRIM if not bike else SKIN)
    return b.mesh()
