"""Per-frame rendering: vehicles as shaded low-poly bodies over a pre-rendered background.

Faces are subdivided before projection so that fisheye curvature shows, culled by their
normals, ordered by depth (painter's algorithm) and filled with cv2.fillPoly. A 16-bit id
buffer gives each vehicle's visible pixel share; plates are textures warped onto their quads.
A vehicle's labelled colour is what it shows: the body, a truck's cargo box too, and for
two-wheelers the tank/fairing and the rider's jacket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from trafficprn.sim import models as M
from trafficprn.sim.cameras import SimCamera
from trafficprn.sim.sumo import Vehicle
from trafficprn.types import FloatArray

MATERIAL_BGR = {
    M.GLASS: (62, 50, 42), M.TYRE: (26, 26, 28), M.HEADLIGHT: (215, 228, 235), M.TAILLIGHT: (40, 30, 165),
    M.PLATE_FRONT: (236, 238, 238), M.PLATE_BACK: (236, 238, 238), M.TRIM: (45, 46, 48), M.SKIN: (110, 145, 195),
    M.HUB: (150, 152, 155),
}
CARGO_BGR = [(235, 235, 235), (190, 190, 188), (150, 80, 40), (40, 40, 160), (60, 110, 60), (225, 225, 230)]
CLOTHES_BGR = [(40, 40, 40), (140, 60, 30), (40, 40, 150), (150, 150, 150), (30, 80, 30), (200, 200, 200)]
PLATE_TEX = (260, 60)


@dataclass(frozen=True)
class Lighting:
    sun_dir: FloatArray  # (3,) unit vector towards the sun, ground frame
    ambient: float = 0.55
    diffuse: float = 0.55
    gain: float = 1.0
    tint_bgr: tuple[float, float, float] = (1.0, 1.0, 1.0)
    noise_sd: float = 3.0
    dusk: bool = False


def plate_texture(text: str) -> np.ndarray:
    w, h = PLATE_TEX
    img = np.full((h, w, 3), 240, np.uint8)
    cv2.rectangle(img, (2, 2), (w - 3, h - 3), (20, 20, 20), 3)
    cv2.rectangle(img, (5, 5), (24, h - 6), (150, 50, 20), -1)
    font = cv2.FONT_HERSHEY_DUPLEX
    thick = 4
    scale = 1.7
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    scale *= min((w - 40) / tw, (h - 16) / th)
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    cv2.putText(img, text, (28 + (w - 32 - tw) // 2, (h + th) // 2), font, scale, (15, 15, 15), thick, cv2.LINE_AA)
    return img


@dataclass
class _VehicleLook:
    mesh: M.Mesh
    colours: FloatArray  # (Q, 3) base BGR per quad
    plate_tex: np.ndarray | None


class Renderer:
    """Renders frames of one camera; per-vehicle meshes are cached while a vehicle is present."""

    def __init__(self, cam: SimCamera, background_bgr: np.ndarray, vehicles: dict[int, Vehicle], lighting: Lighting,
                 seed: int, subdivisions: int | None = None):
        self.cam = cam
        self.background = background_bgr
        self.vehicles = vehicles
        self.light = lighting
        self.seed = seed
        self.n_sub = subdivisions if subdivisions is not None else (4 if cam.is_fisheye else 1)
        self._looks: dict[int, _VehicleLook] = {}
        rng = np.random.default_rng(seed + 99)
        h, w = background_bgr.shape[:2]
        sd = lighting.noise_sd
        self._noise = [(np.clip(rng.normal(0, sd, (h, w, 3)), 0, 255).astype(np.uint8),
                        np.clip(-rng.normal(0, sd, (h, w, 3)), 0, 255).astype(np.uint8)) for _ in range(3)]

    def _look(self, vid: int) -> _VehicleLook:
        look = self._looks.get(vid)
        if look is None:
            v = self.vehicles[vid]
            rng = np.random.default_rng([self.seed, vid])
            mesh = M.build_mesh(v, rng)
            body = np.array(M.PALETTE_BGR[v.colour], np.float64) * rng.uniform(0.92, 1.06)
            cargo = np.array(CARGO_BGR[int(rng.integers(len(CARGO_BGR)))], np.float64)
            clothes = np.array(CLOTHES_BGR[int(rng.integers(len(CLOTHES_BGR)))], np.float64)
            # ground truth must match what is shown: a truck's cargo box is painted in its
            # labelled colour, and a two-wheeler's rider wears it (the bike is too thin to show it)
            if v.cls == "truck":
                cargo = body
            elif v.cls in ("motorcycle", "bicycle"):
                clothes = body
            cols = np.zeros((len(mesh.material), 3))
            for k, mat in enumerate(mesh.material):
                cols[k] = (body if mat == M.BODY else cargo if mat == M.CARGO else clothes if mat == M.CLOTHES
                           else MATERIAL_BGR[int(mat)])
            look = _VehicleLook(mesh, cols, plate_texture(v.plate) if v.plate else None)
            self._looks[vid] = look
        return look

    def forget_except(self, present: set[int]) -> None:
        for vid in [k for k in self._looks if k not in present]:
            del self._looks[vid]

    def render(self, frame_index: int, vids: np.ndarray, xy_m: FloatArray, heading_rad: FloatArray
               ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """One frame: (H, W, 3) uint8 image and per-vehicle objects (box, visibility, plate box)."""
        img = self.background.copy()
        h, w = img.shape[:2]
        ids = np.zeros((h, w), np.uint16)
        self.forget_except({int(v) for v in vids})
        if len(vids) == 0:
            return self._finish(img, frame_index), []
        looks = [self._look(int(v)) for v in vids]
        quads, normals, cols, mats, owner, parent, bias = [], [], [], [], [], [], []
        base = 0
        for i, look in enumerate(looks):
            c, s = np.cos(heading_rad[i]), np.sin(heading_rad[i])
            rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            m = look.mesh
            quads.append(m.quads @ rot.T + np.array([xy_m[i, 0], xy_m[i, 1], 0.0]))
            normals.append(m.normals @ rot.T)
            cols.append(look.colours)
            mats.append(m.material)
            owner.append(np.full(len(m.material), i))
            parent.append(m.parent + base)
            bias.append(m.bias)
            base += len(m.material)
        q = np.concatenate(quads)
        nrm = np.concatenate(normals)
        col = np.concatenate(cols)
        mat = np.concatenate(mats)
        own = np.concatenate(owner)
        par = np.concatenate(parent)
        cen = q.mean(axis=1)
        view = cen[par] - self.cam.position_m
        facing = np.einsum("ij,ij->i", nrm, view) < 0
        depth = np.linalg.norm(view, axis=1) - np.concatenate(bias)
        idx = np.nonzero(facing)[0]
        idx = idx[np.argsort(-depth[idx], kind="stable")]
        # shading
        li = self.light
        lam = np.clip(nrm @ li.sun_dir, 0, 1)
        shade = li.ambient + li.diffuse * lam
        glass = mat == M.GLASS
        shade[glass] = 0.7 + 0.5 * np.clip(nrm[glass, 2], 0, 1)
        lit: np.ndarray = np.isin(mat, [M.HEADLIGHT]) if li.dusk else np.zeros(len(mat), bool)
        shade[lit] = 1.25
        bgr = np.clip(col * shade[:, None] * np.array(li.tint_bgr), 0, 255)
        # subdivided outlines, projected in one call
        n = self.n_sub
        t = np.arange(n) / n
        qq = q[idx]
        nxt = np.roll(qq, -1, axis=1)
        pts = (qq[:, :, None, :] * (1 - t)[None, None, :, None] + nxt[:, :, None, :] * t[None, None, :, None])
        pts = pts.reshape(len(idx), 4 * n, 3)
        px, ok = self.cam.project(pts.reshape(-1, 3))
        px = px.reshape(len(idx), 4 * n, 2)
        ok = np.asarray(ok.reshape(len(idx), 4 * n).all(axis=1) & (np.abs(px) < 1e5).all(axis=(1, 2)))
        self._shadows(img, xy_m, heading_rad, looks)
        fixed = np.round(np.nan_to_num(px) * 4).astype(np.int32)
        for k in range(len(idx)):
            if not ok[k]:
                continue
            qi = idx[k]
            poly = fixed[k]
            if mat[qi] in (M.PLATE_FRONT, M.PLATE_BACK):
                self._plate(img, looks[own[qi]], px[k, ::n], bgr[qi])
            else:
                cv2.fillPoly(img, [poly], bgr[qi].tolist(), lineType=cv2.LINE_AA, shift=2)
            cv2.fillPoly(ids, [poly], int(own[qi]) + 1, lineType=cv2.LINE_8, shift=2)
        if li.dusk:
            self._glow(img, px, ok, mat[idx], n)
        objects = self._objects(ids, px, ok, idx, own, mat, n, len(vids), vids)
        return self._finish(img, frame_index), objects

    def _shadows(self, img: np.ndarray, xy_m: FloatArray, heading_rad: FloatArray, looks: list[_VehicleLook]) -> None:
        """Soft shadows: each vehicle's footprint, offset away from the sun, darkens the road."""
        sun = self.light.sun_dir
        off = -sun[:2] / max(sun[2], 0.3) * 0.6
        n = max(self.n_sub, 2)
        t = np.arange(n) / n
        h, w = img.shape[:2]
        rings = []
        for i in range(len(looks)):
            quads = looks[i].mesh.quads
            lo, hi = quads.reshape(-1, 3).min(axis=0), quads.reshape(-1, 3).max(axis=0)
            c, s = np.cos(heading_rad[i]), np.sin(heading_rad[i])
            corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]]) * 1.04
            g = corners @ np.array([[c, s], [-s, c]]) + xy_m[i] + off * hi[2] * 0.5
            nxt = np.roll(g, -1, axis=0)
            rings.append((g[:, None, :] * (1 - t)[None, :, None] + nxt[:, None, :] * t[None, :, None]).reshape(-1, 2))
        flat = np.concatenate(rings)
        px_all, ok_all = self.cam.project(np.column_stack([flat, np.full(len(flat), 0.02)]))
        m = 4 * n
        for i in range(len(looks)):
            px, ok = px_all[i * m:(i + 1) * m], ok_all[i * m:(i + 1) * m]
            if not ok.all():
                continue
            x0, y0 = np.maximum(np.floor(px.min(axis=0)).astype(int) - 2, 0)
            x1, y1 = np.minimum(np.ceil(px.max(axis=0)).astype(int) + 3, [w, h])
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(mask, [np.round((px - [x0, y0]) * 4).astype(np.int32)], 128, lineType=cv2.LINE_AA, shift=2)
            mask = cv2.blur(mask, (3, 3))
            roi = img[y0:y1, x0:x1]
            dark = cv2.merge([255 - mask] * 3)
            cv2.multiply(roi, dark, dst=roi, scale=1 / 255)

    def _glow(self, img: np.ndarray, px: FloatArray, ok: np.ndarray, mats: np.ndarray, n: int) -> None:
        """Dusk: blurred halos around visible head- and taillights."""
        lights = np.nonzero(ok & np.isin(mats, [M.HEADLIGHT, M.TAILLIGHT]))[0]
        if len(lights) == 0:
            return
        glow = np.zeros_like(img)
        for k in lights:
            c = px[k].mean(axis=0)
            r = max(2.0, float(np.ptp(px[k][:, 0])) * 0.9)
            col = (170, 200, 215) if mats[k] == M.HEADLIGHT else (20, 20, 150)
            cv2.circle(glow, (int(c[0]), int(c[1])), int(r), col, -1, cv2.LINE_AA)
        cv2.add(img, cv2.GaussianBlur(glow, (0, 0), 4), dst=img)

    def _plate(self, img: np.ndarray, look: _VehicleLook, corners_px: FloatArray, bgr: FloatArray) -> None:
        """corners_px: (4, 2) image px of the plate quad: bottom-left, bottom-right, top-right, top-left."""
        x0, y0 = np.floor(corners_px.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners_px.max(axis=0)).astype(int) + 1
        hh, ww = img.shape[:2]
        if look.plate_tex is None or x1 - x0 < 12 or y1 - y0 < 4 or x0 < 0 or y0 < 0 or x1 > ww or y1 > hh:
            cv2.fillPoly(img, [np.round(corners_px * 4).astype(np.int32)], bgr.tolist(), cv2.LINE_AA, shift=2)
            return
        tex = look.plate_tex
        quad_w = float(max(np.linalg.norm(corners_px[1] - corners_px[0]), np.linalg.norm(corners_px[2] - corners_px[3])))
        if quad_w < tex.shape[1] / 1.5:  # pre-shrink so the warp does not alias
            f = max(quad_w * 1.5, 16.0) / tex.shape[1]
            tex = cv2.resize(tex, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        th, tw = tex.shape[:2]
        src = np.array([[0, th], [tw, th], [tw, 0], [0, 0]], dtype=np.float32)
        dst = (corners_px - [x0, y0]).astype(np.float32)
        mtx = cv2.getPerspectiveTransform(src, dst)
        tex = (tex.astype(np.float32) * (bgr / 236.0)).clip(0, 255).astype(np.uint8)
        patch = cv2.warpPerspective(tex, mtx, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round(dst * 4).astype(np.int32)], 255, cv2.LINE_8, shift=2)
        roi = img[y0:y1, x0:x1]
        roi[mask > 0] = patch[mask > 0]

    def _objects(self, ids: np.ndarray, px: FloatArray, ok: np.ndarray, idx: np.ndarray, own: np.ndarray,
                 mat: np.ndarray, n: int, n_veh: int, vids: np.ndarray) -> list[dict[str, Any]]:
        h, w = ids.shape
        out: list[dict[str, Any]] = []
        owners = own[idx]
        for i in range(n_veh):
            sel = np.nonzero((owners == i) & ok)[0]
            if len(sel) == 0:
                continue
            pts = px[sel].reshape(-1, 2)
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            cx0, cy0, cx1, cy1 = max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)
            if cx1 - cx0 < 1 or cy1 - cy0 < 1:
                continue
            # full silhouette area on its own canvas (also counts the part outside the image)
            ox, oy = int(np.floor(x0)), int(np.floor(y0))
            cw, ch = int(np.ceil(x1)) - ox + 2, int(np.ceil(y1)) - oy + 2
            if cw * ch > 4 * w * h:
                continue
            own_mask = np.zeros((ch, cw), np.uint8)
            polys = [np.round((px[k] - [ox, oy]) * 4).astype(np.int32) for k in sel]
            cv2.fillPoly(own_mask, polys, 1, cv2.LINE_8, shift=2)
            area = int(own_mask.sum())
            visible = int(np.count_nonzero(ids[int(cy0):int(np.ceil(cy1)), int(cx0):int(np.ceil(cx1))] == i + 1))
            if visible == 0 or area == 0:
                continue
            plate = None
            for k in sel:
                if mat[idx[k]] in (M.PLATE_FRONT, M.PLATE_BACK):
                    c = px[k].mean(axis=0)
                    if 0 <= c[0] < w and 0 <= c[1] < h and ids[int(c[1]), int(c[0])] == i + 1:
                        p0, p1 = px[k].min(axis=0), px[k].max(axis=0)
                        plate = [round(float(p0[0]), 1), round(float(p0[1]), 1), round(float(p1[0]), 1),
                                 round(float(p1[1]), 1)]
            out.append({"vid": int(vids[i]), "xyxy": [round(cx0, 1), round(cy0, 1), round(cx1, 1), round(cy1, 1)],
                        "visibility": round(min(1.0, visible / area), 3), "plate_xyxy": plate})
        return out

    def _finish(self, img: np.ndarray, frame_index: int) -> np.ndarray:
        li = self.light
        gain = li.gain * (1.0 + 0.03 * np.sin(frame_index * 0.05 + self.seed))
        if abs(gain - 1.0) > 1e-3:
            img = cv2.convertScaleAbs(img, alpha=float(gain))
        if li.noise_sd > 0:
            pos, neg = self._noise[frame_index % len(self._noise)]
            img = cv2.subtract(cv2.add(img, pos), neg)
        return img
