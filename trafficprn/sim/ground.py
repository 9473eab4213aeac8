"""The static background: a top-down road texture in ground m, seen through a camera.

`road_texture(network, style, rng)` paints asphalt, kerbs, sidewalks, lane markings,
stop lines and crosswalks at `RES_M` metres per texel. `render_background(camera, tex)`
unprojects every pixel to a ray, intersects the road plane and samples the texture with
cv2.remap (2x supersampled, then area-downsampled), adding sky and distance haze.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from trafficprn.sim.cameras import SimCamera
from trafficprn.sim.sumo import Network
from trafficprn.types import FloatArray

RES_M = 0.05
SIDEWALK_M = 3.5
CROSSWALK_M = (1.0, 4.0)  # from the stop line into the junction


@dataclass(frozen=True)
class GroundStyle:
    asphalt_bgr: tuple[int, int, int] = (78, 80, 82)
    sidewalk_bgr: tuple[int, int, int] = (150, 158, 165)
    grass_bgr: tuple[int, int, int] = (60, 110, 85)
    marking_bgr: tuple[int, int, int] = (225, 228, 230)
    sky_bgr: tuple[int, int, int] = (235, 205, 170)
    haze_bgr: tuple[int, int, int] = (200, 195, 190)


@dataclass(frozen=True)
class RoadTexture:
    image_bgr: np.ndarray  # (H, W, 3) uint8, row 0 = north edge
    half_extent_m: float

    def to_texel(self, xy_m: FloatArray) -> FloatArray:
        """(N, 2) ground m -> (N, 2) texel coordinates (col, row)."""
        return np.stack([(xy_m[:, 0] + self.half_extent_m) / RES_M, (self.half_extent_m - xy_m[:, 1]) / RES_M], axis=1)


def _poly(tex: RoadTexture, pts_m: FloatArray) -> np.ndarray:
    return np.round(tex.to_texel(np.asarray(pts_m, dtype=np.float64)) * 4).astype(np.int32)  # 2 bits subpixel


def _fill(tex: RoadTexture, pts_m: FloatArray, bgr: tuple[int, int, int]) -> None:
    cv2.fillPoly(tex.image_bgr, [_poly(tex, pts_m)], bgr, lineType=cv2.LINE_AA, shift=2)


def _rect(a: FloatArray, b: FloatArray, half_w: float) -> FloatArray:
    """Ground rectangle around segment a->b, half width `half_w`."""
    d = (b - a) / np.linalg.norm(b - a)
    n = np.array([-d[1], d[0]])
    return np.array([a + n * half_w, b + n * half_w, b - n * half_w, a - n * half_w])


def road_texture(network: Network, half_extent_m: float, style: GroundStyle, rng: np.random.Generator) -> RoadTexture:
    n = int(2 * half_extent_m / RES_M)
    base = np.empty((n, n, 3), dtype=np.uint8)
    base[:] = style.grass_bgr
    tex = RoadTexture(base, half_extent_m)
    legs = sorted({ln.leg for ln in network.lanes})
    # sidewalks, then asphalt for each leg and the junction
    for leg in legs:
        lanes = network.inbound(leg) + network.outbound(leg)
        pts = np.concatenate([ln.shape_m for ln in lanes])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        hw = max(ln.width_m for ln in lanes) / 2
        road = np.array([[lo[0] - hw, lo[1] - hw], [hi[0] + hw, lo[1] - hw], [hi[0] + hw, hi[1] + hw], [lo[0] - hw, hi[1] + hw]])
        axis = 0 if hi[0] - lo[0] > hi[1] - lo[1] else 1
        grow = np.array([0.0, SIDEWALK_M]) if axis == 0 else np.array([SIDEWALK_M, 0.0])
        walk = road + np.array([-1, -1]) * grow * np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]])
        _fill(tex, walk, style.sidewalk_bgr)
    j = network.junction_shape_m
    if len(j):
        c = j.mean(axis=0)
        big = c + (j - c) * (1 + SIDEWALK_M / max(np.linalg.norm(j - c, axis=1).min(), 1.0))
        _fill(tex, big, style.sidewalk_bgr)
    kerb = (int(style.sidewalk_bgr[0] * 1.15), int(style.sidewalk_bgr[1] * 1.15), int(style.sidewalk_bgr[2] * 1.15))
    for leg in legs:
        lanes = network.inbound(leg) + network.outbound(leg)
        for ln in lanes:
            a, b = ln.shape_m[0], ln.shape_m[-1]
            _fill(tex, _rect(a, b, ln.width_m / 2 + 0.15), kerb)
        for ln in lanes:
            a, b = ln.shape_m[0], ln.shape_m[-1]
            _fill(tex, _rect(a, b, ln.width_m / 2 + 0.02), style.asphalt_bgr)
    if len(j):
        _fill(tex, j, style.asphalt_bgr)
    # asphalt grain and patches (blurred noise, once per scene)
    grain = rng.normal(0, 1, (n // 4, n // 4)).astype(np.float32)
    fine = rng.normal(0, 3, (509, 509)).astype(np.float32)
    reps = n // 509 + 1
    grain = cv2.resize(cv2.GaussianBlur(grain, (0, 0), 2.0), (n, n)) * 5 + np.tile(fine, (reps, reps))[:n, :n]
    cv2.add(tex.image_bgr, cv2.merge([grain, grain, grain]), dst=tex.image_bgr, dtype=cv2.CV_8U)
    _markings(tex, network, style)
    return tex


def _markings(tex: RoadTexture, network: Network, style: GroundStyle) -> None:
    white = style.marking_bgr
    for leg in sorted({ln.leg for ln in network.lanes}):
        inbound, outbound = network.inbound(leg), network.outbound(leg)
        # centre line between directions (solid), lane dividers (dashed) inside each direction
        a, b = inbound[-1].shape_m[0], inbound[-1].shape_m[-1]
        d = (b - a) / np.linalg.norm(b - a)
        nrm = np.array([-d[1], d[0]])  # left of the inbound direction
        half = inbound[-1].width_m / 2
        _fill(tex, _rect(a + nrm * half, b + nrm * half, 0.08), white)
        for group in (inbound, outbound):
            for k in range(len(group) - 1):
                p, q = group[k].shape_m[0], group[k].shape_m[-1]
                dd = (q - p) / np.linalg.norm(q - p)
                nn = np.array([-dd[1], dd[0]]) * group[k].width_m / 2
                length = float(np.linalg.norm(q - p))
                for s in np.arange(0.0, length - 3.0, 9.0):
                    _fill(tex, _rect(p + nn + dd * s, p + nn + dd * (s + 3.0), 0.07), white)
        # stop line across the inbound lanes, at the lane ends
        ends = np.array([ln.shape_m[-1] for ln in inbound])
        hw = inbound[0].width_m / 2
        right = np.array([d[1], -d[0]])
        p0 = ends[0] + right * hw - d * 0.25
        p1 = ends[-1] - right * hw - d * 0.25
        _fill(tex, _rect(p0, p1, 0.25), white)
        # crosswalk: zebra across the whole road, just inside the junction
        o_ends = np.array([ln.shape_m[0] for ln in outbound])
        far = o_ends[0] + nrm * outbound[0].width_m / 2 * 1.0
        near = ends[0] + right * hw
        width = float(np.linalg.norm(far - near)) + 0.0
        for s in np.arange(0.3, width - 0.3, 1.0):
            c0 = near + (far - near) / width * s
            _fill(tex, _rect(c0 + d * CROSSWALK_M[0], c0 + d * CROSSWALK_M[1], 0.25), white)
        # turn arrows are left out; lane use is in the site config


def render_background(cam: SimCamera, tex: RoadTexture, style: GroundStyle, supersample: int = 2) -> np.ndarray:
    """(H, W, 3) uint8: the road texture, sky and haze seen through `cam`.

    Rays are cast once per pixel; the texel maps are upsampled `supersample` times for
    the texture lookup, which is then area-downsampled (anti-aliasing far markings).
    """
    w, h = cam.image_size
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    px = np.stack([gx.ravel(), gy.ravel()], axis=1)
    del gx, gy
    rays_c = cam.lens.unproject(px)
    del px
    finite = np.isfinite(rays_c).all(axis=1)
    valid = finite & (np.nan_to_num(rays_c[:, 2], nan=-2.0) >= np.cos(cam.lens.max_theta_rad) - 1e-9)
    rays_w = rays_c @ cam.rotation
    del rays_c
    ground, hit = cam.ground_from_rays(rays_w)
    texel = tex.to_texel(ground).astype(np.float32).reshape(h, w, 2)
    dist = np.linalg.norm(ground - cam.position_m[:2], axis=1).astype(np.float32).reshape(h, w)
    hit2 = hit.reshape(h, w)
    dist[~hit2] = 1e4
    texel[~hit2] = -10
    if supersample > 1:
        sw, sh = w * supersample, h * supersample
        # pixel centres of the fine grid, in coarse pixel coordinates
        fx = ((np.arange(sw) + 0.5) / supersample - 0.5).astype(np.float32)
        fy = ((np.arange(sh) + 0.5) / supersample - 0.5).astype(np.float32)
        mx, my = np.meshgrid(fx, fy)
        fine = cv2.remap(texel, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        img = cv2.remap(tex.image_bgr, fine[..., 0], fine[..., 1], cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=style.grass_bgr)
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    else:
        img = cv2.remap(tex.image_bgr, texel[..., 0], texel[..., 1], cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=style.grass_bgr)
    elev = np.clip(np.nan_to_num(rays_w[:, 2], nan=0.0), 0, 1).astype(np.float32).reshape(h, w)
    haze = np.clip((dist - 40.0) / 250.0, 0, 0.85)
    haze[~hit2] = 1.0
    sky_w = np.clip(elev * 2, 0, 1)[..., None]
    sky = np.array(style.haze_bgr, np.float32) * (1 - sky_w) + np.array(style.sky_bgr, np.float32) * sky_w
    hz = haze[..., None]
    out = img.astype(np.float32) * (1 - hz) + np.array(style.haze_bgr, np.float32) * hz
    out = np.where((~hit2)[..., None], sky, out) * valid.reshape(h, w, 1)
    return np.asarray(np.clip(out, 0, 255), dtype=np.uint8)
