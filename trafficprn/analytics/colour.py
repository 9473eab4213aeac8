"""Vehicle colour from a vehicle crop, voted over a track.

Only body pixels count. The body mask comes from the box geometry (a central band that
leaves out the box margins, where road shows, and the bottom, with wheels and shadow),
then pixels that match the road seen on the crop's border ring (or road marks absent from
the box middle) are dropped. The rest are clustered in CIELAB (4 clusters, sizes weighted
towards the crop's middle). Clusters of one paint on faces in sun and in shade (a similar
hue; or neutral, the shaded one at least half as light) form a group; the heaviest group
(dark achromatic clusters, i.e. glass, tyres and shadow, count less) is the paint, read on
its lit part. Before naming, the crop is corrected for the
light using the road ring (grey-world on asphalt, within limits). The name is the nearest
palette colour in CIELAB with lightness weighted down, since shading changes lightness
more than hue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from trafficprn.errors import ConfigError, InputError

RGB = tuple[int, int, int]
# sRGB prototypes per name; several per name cover metallic / dark / light variants.
DEFAULT_PALETTE: dict[str, tuple[RGB, ...]] = {
    "white": ((242, 242, 240), (225, 228, 230)),
    "black": ((22, 22, 24), (40, 40, 44)),
    "grey": ((100, 102, 106), (75, 78, 82), (125, 126, 128)),
    "silver": ((180, 183, 188), (160, 164, 170), (192, 194, 196)),
    "red": ((180, 22, 28), (140, 20, 25), (210, 40, 40)),
    "blue": ((30, 60, 150), (20, 35, 90), (60, 110, 190)),
    "green": ((30, 110, 50), (20, 70, 35), (90, 150, 80)),
    "yellow": ((235, 200, 30), (245, 220, 70)),
    "orange": ((235, 120, 25), (215, 95, 20)),
    "brown": ((100, 60, 35), (75, 45, 30), (125, 85, 55)),
    "beige": ((210, 190, 150), (195, 180, 145), (225, 210, 175)),
}
L_WEIGHT = 0.45  # lightness counts about half as much as hue/chroma
ROAD_V = 88.0  # sRGB value of lit asphalt the palette is meant for: the exposure reference
GAIN_LIMITS = (0.7, 1.5)
ACHROMATIC_CHROMA = 10.0
DARK_L = 30.0  # CIELAB lightness at or below which achromatic pixels may be glass, tyres or shadow
PAINT_CHROMA = 8.0  # clusters this colourful group by hue
HUE_TOLERANCE_DEG = 20.0


@dataclass(frozen=True)
class ColourResult:
    """A colour name from the palette and a confidence in [0, 1]."""

    name: str
    confidence: float

    def to_dict(self) -> dict[str, object]:
        return {"colour": self.name, "confidence": round(float(self.confidence), 4)}


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(N, 3) sRGB 0..255 -> (N, 3) CIELAB (L 0..100), through OpenCV's float path."""
    arr = (np.asarray(rgb, dtype=np.float32).reshape(-1, 1, 3) / 255.0).astype(np.float32)
    return np.asarray(cv2.cvtColor(arr, cv2.COLOR_RGB2Lab), dtype=np.float64).reshape(-1, 3)


def _kmeans(points: np.ndarray, k: int, iters: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means on (N, D): centres start at lightness quantiles. Stops early
    once the labels repeat (a fixed point: further iterations would change nothing)."""
    order = np.argsort(points[:, 0])
    centres = points[order[np.linspace(0, len(points) - 1, k + 2)[1:-1].astype(int)]].copy()
    labels = np.zeros(len(points), dtype=np.int64)
    sq = (points**2).sum(axis=1)[:, None]
    for it in range(iters):
        # |p - c|^2 = |p|^2 - 2 p.c + |c|^2: one matrix product, no (N, k, D) temporary
        d = sq - 2.0 * (points @ centres.T) + (centres**2).sum(axis=1)[None, :]
        new_labels = d.argmin(axis=1)
        if it > 0 and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        # members of each cluster as slices of the points sorted by label (one sort, not k masks)
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(k + 1))
        grouped = points[order]
        for j in range(k):
            if bounds[j + 1] > bounds[j]:
                centres[j] = np.median(grouped[bounds[j] : bounds[j + 1]], axis=0)
    return centres, labels


def _centrality(shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) weights: 1 in the middle of the crop falling to 0.25 at its corners. The
    vehicle fills the middle of its box; road marks, kerbs and neighbours its edges."""
    h, w = shape[:2]
    y = (np.arange(h) + 0.5) / h * 2 - 1
    x = (np.arange(w) + 0.5) / w * 2 - 1
    r2 = (x[None, :] ** 2 + y[:, None] ** 2) / 2
    return np.asarray(1.0 - 0.75 * r2)


class ColourClassifier:
    """Names the body colour of a vehicle crop.

    palette: name -> an sRGB triple or a sequence of them (default: DEFAULT_PALETTE,
    white, black, grey, silver, red, blue, green, yellow, orange, brown, beige).
    work_width_px: crops are resized to this width first (speed).
    """

    def __init__(self, palette: Mapping[str, RGB | Sequence[RGB]] | None = None, *, work_width_px: int = 64) -> None:
        palette = DEFAULT_PALETTE if palette is None else palette
        names: list[str] = []
        protos: list[RGB] = []
        for name, value in palette.items():
            arr = np.asarray(value, dtype=np.float64)
            arr = arr.reshape(-1, 3) if arr.size % 3 == 0 and arr.size > 0 else None  # type: ignore[assignment]
            if arr is None or np.any(arr < 0) or np.any(arr > 255):
                raise ConfigError(
                    f"palette colour {name!r} must be sRGB triples in 0..255, got {value!r}", field="palette"
                )
            for row in arr:
                names.append(name)
                protos.append((int(row[0]), int(row[1]), int(row[2])))
        if len(set(names)) < 2:
            raise ConfigError(f"a palette needs at least 2 colours, got {sorted(set(names))}", field="palette")
        self.names = names
        self.palette_lab = _srgb_to_lab(np.array(protos))
        self.work_width_px = work_width_px
        self.road_v = ROAD_V
        self.achromatic_pct = 85.0
        self.chromatic_pct = 70.0

    @property
    def colour_names(self) -> list[str]:
        return list(dict.fromkeys(self.names))

    def classify(self, crop_bgr: np.ndarray) -> ColourResult:
        """Colour of the vehicle in a crop (H, W, 3) BGR uint8 that holds about its box."""
        if not isinstance(crop_bgr, np.ndarray) or crop_bgr.ndim != 3 or crop_bgr.shape[2] != 3 or crop_bgr.size == 0:
            raise InputError(f"expected a BGR crop (H, W, 3), got shape {getattr(crop_bgr, 'shape', None)}")
        h, w = crop_bgr.shape[:2]
        if min(h, w) < 8:
            raise InputError(f"crop too small for colour: {w}x{h} px, expected at least 8x8")
        scale = self.work_width_px / w
        small = cv2.resize(crop_bgr, (self.work_width_px, max(8, int(round(h * scale)))), interpolation=cv2.INTER_AREA)
        rgb = self._correct_light(small[:, :, ::-1].astype(np.float64))
        lab = _srgb_to_lab(rgb.reshape(-1, 3)).reshape(small.shape)
        mask = self._body_mask(lab)
        body = lab[mask]
        centrality = _centrality(lab.shape)[mask]
        centres, labels = _kmeans(body, 4)
        sizes = np.bincount(labels, weights=centrality, minlength=4)
        group = self._paint_groups(centres, sizes)
        chroma = np.hypot(centres[:, 1], centres[:, 2])
        weight = sizes.copy()
        weight[(centres[:, 0] <= DARK_L) & (chroma < 12)] *= 0.6  # glass, tyres, shadow
        weight[chroma > 20] *= 1.3  # paint is often the most saturated thing in the box
        group_weight = np.bincount(group, weights=weight, minlength=4)
        pick = int(np.argmax(group_weight))
        member = group[labels] == pick
        share = float(centrality[member].sum() / centrality.sum())
        paint = self._paint(body, member)
        name, margin = self._nearest(paint)
        confidence = float(np.clip((0.4 + 0.6 * share) * (0.3 + 0.7 * margin), 0.0, 1.0))
        return ColourResult(name, confidence)

    # ------------------------------------------------------------ internals
    @staticmethod
    def _paint_groups(centres: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """(K,) group id per cluster: clusters of one paint seen on faces in sun and in
        shade are one group. Shading scales lightness and chroma alike and keeps the hue, so
        coloured clusters of a similar hue angle group; so do light achromatic ones (grey
        faces of white, silver or grey paint), and so do dark achromatic ones (black paint,
        or glass, tyres and shadow, which count less when groups are weighed)."""
        k = len(centres)
        chroma = np.hypot(centres[:, 1], centres[:, 2])
        hue = np.arctan2(centres[:, 2], centres[:, 1])
        group = np.arange(k)
        for a in range(k):
            for b in range(a + 1, k):
                if not (sizes[a] and sizes[b]):
                    continue
                if min(chroma[a], chroma[b]) >= PAINT_CHROMA:
                    dh = abs((hue[a] - hue[b] + np.pi) % (2 * np.pi) - np.pi)
                    same = dh < np.deg2rad(HUE_TOLERANCE_DEG)
                else:  # light greys group; dark ones (black paint, or glass and tyres) stay
                    # alone, unless one is a shaded face of a light one: as neutral, and not
                    # under half as light (sun and ambient light on one paint)
                    lo, hi = sorted((centres[a, 0], centres[b, 0]))
                    shaded = hi > DARK_L and lo >= 0.5 * hi and np.linalg.norm(centres[a, 1:] - centres[b, 1:]) < 4
                    same = max(chroma[a], chroma[b]) < ACHROMATIC_CHROMA and (lo > DARK_L or shaded)
                same |= bool(np.linalg.norm(centres[a] - centres[b]) < 6)  # one colour split in two
                if same:
                    group[group == group[b]] = group[a]
        return group

    def _paint(self, body: np.ndarray, member: np.ndarray) -> np.ndarray:
        """The paint's CIELAB from the chosen group's pixels (M, 3). Shading only darkens
        paint, so it is read on the lit part: lightness at an upper percentile, and for
        coloured paint the median colour of the pixels at or above it; for grey-ish paint
        over all light grey-ish body pixels (faces turned to and away from the sun). Dark
        grey-ish paint (black) is the group's median: glass, lighter than it, is in its
        group."""
        pix = body[member]
        centre = np.median(pix, axis=0)
        achromatic = np.hypot(centre[1], centre[2]) < ACHROMATIC_CHROMA
        if achromatic and centre[0] <= DARK_L:
            return np.asarray(centre)  # black paint: its lit faces are dark too, glass lighter
        if achromatic:
            body_chroma = np.hypot(body[:, 1], body[:, 2])
            grey = (body_chroma < ACHROMATIC_CHROMA + 2) & (body[:, 0] > 25)
            if grey.sum() >= member.sum():
                pix = body[grey]
            paint = np.asarray(np.median(pix, axis=0))
            paint[0] = np.percentile(pix[:, 0], self.achromatic_pct)
            return paint
        lit = float(np.percentile(pix[:, 0], self.chromatic_pct))
        return np.asarray(np.median(pix[pix[:, 0] >= lit], axis=0))

    @staticmethod
    def _ring_mask(shape: tuple[int, ...]) -> np.ndarray:
        h, w = shape[:2]
        b = max(1, int(round(0.05 * min(h, w))))
        ring = np.zeros((h, w), dtype=bool)
        ring[:b, :] = ring[-b:, :] = ring[:, :b] = ring[:, -b:] = True
        return ring

    def _correct_light(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) sRGB floats. The road is the grey card: the largest grey, uniform,
        road-dark group of border-ring pixels (>= 20 % of the ring) is scaled to ROAD_V and
        made neutral, within limits. Without such a group the crop is left alone."""
        ring = rgb[self._ring_mask(rgb.shape)]
        centres, labels = _kmeans(ring, 3)
        counts = np.bincount(labels, minlength=3)
        for k in np.argsort(-counts):
            if counts[k] < 0.2 * len(ring):
                break
            members = ring[labels == k]
            med = np.median(members, axis=0)
            mean_v = float(med.mean())
            spread = float(np.median(np.abs(members - med).mean(axis=1)))
            if 25 <= mean_v <= 130 and np.ptp(med) <= 0.15 * mean_v and spread <= 0.25 * mean_v:
                gain = float(np.clip(self.road_v / mean_v, *GAIN_LIMITS))
                balance = np.clip(mean_v / np.maximum(med, 1.0), 0.92, 1.08)
                return np.asarray(np.clip(rgb * gain * balance[None, None, :], 0, 255))
        return np.asarray(np.clip(rgb, 0, 255))

    def _body_mask(self, lab: np.ndarray) -> np.ndarray:
        """Geometry band minus background: pixels like the border ring's dominant colour
        (road), another major coloured one (grass), or a grey-ish one absent from the
        middle of the box (road marks, kerbs) are dropped, unless the middle of the box
        has that colour too (a grey car on grey asphalt). If that leaves too little (a tight box, whose
        ring is the vehicle itself), only the ring's dominant colour is dropped, and
        failing that the band alone is used."""
        h, w = lab.shape[:2]
        band = np.zeros((h, w), dtype=bool)
        band[int(0.12 * h) : int(0.8 * h), int(0.14 * w) : int(0.86 * w)] = True
        core = np.zeros((h, w), dtype=bool)
        core[int(0.3 * h) : int(0.7 * h), int(0.3 * w) : int(0.7 * w)] = True
        ring = lab[self._ring_mask(lab.shape)]
        centres, labels = _kmeans(ring, 3)
        counts = np.bincount(labels, minlength=3)
        keep_all = band.copy()
        keep_main = band
        main = int(np.argmax(counts))
        for k in np.flatnonzero(counts >= 0.15 * len(ring)):
            members = ring[labels == k]
            spread = float(np.median(np.sqrt(((members - centres[k]) ** 2).sum(axis=1))))
            dist = np.sqrt(((lab - centres[k]) ** 2).sum(axis=2))
            near = dist <= max(8.0, 2.5 * spread)
            in_core = float(near[core].mean())
            if k != main and np.hypot(centres[k, 1], centres[k, 2]) < 12 and in_core >= 0.05:
                continue  # grey-ish minor ring colours (shadow, kerb) may be the paint too
            if in_core > 0.5:
                continue  # the middle of the box has this colour: it is the vehicle's
            keep_all &= ~near
            if k == main:
                keep_main = band & ~near
        if keep_all.sum() >= 0.25 * band.sum():
            return keep_all
        return keep_main if keep_main.sum() >= 0.15 * band.sum() else band

    def _nearest(self, lab: np.ndarray) -> tuple[str, float]:
        """Nearest palette name and a margin in [0, 1] to the next other name."""
        delta = self.palette_lab - lab[None, :]
        delta[:, 0] *= L_WEIGHT
        dist = np.sqrt((delta**2).sum(axis=1))
        order = np.argsort(dist)
        best = self.names[order[0]]
        d1 = dist[order[0]]
        d2 = next(dist[i] for i in order if self.names[i] != best)
        return best, float((d2 - d1) / (d2 + 1e-9))


def box_purity(xyxy: np.ndarray, grid: int = 8) -> np.ndarray:
    """(N, 4) boxes of one frame (image px) -> (N,) share of each box that no other box
    covers (sampled on a grid x grid lattice). A crop of a box that others overlap may
    show the other vehicle: colour crops are best taken where purity is high."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    if n < 2:
        return np.ones(n)
    t = (np.arange(grid) + 0.5) / grid
    gx = boxes[:, 0, None] + (boxes[:, 2] - boxes[:, 0])[:, None] * t[None, :]  # (N, G)
    gy = boxes[:, 1, None] + (boxes[:, 3] - boxes[:, 1])[:, None] * t[None, :]
    px = np.repeat(gx[:, None, :], grid, axis=1).reshape(n, -1)  # (N, G*G)
    py = np.repeat(gy[:, :, None], grid, axis=2).reshape(n, -1)
    inside = (
        (px[:, :, None] >= boxes[None, None, :, 0]) & (px[:, :, None] <= boxes[None, None, :, 2])
        & (py[:, :, None] >= boxes[None, None, :, 1]) & (py[:, :, None] <= boxes[None, None, :, 3])
    )  # (N, G*G, N)
    inside[np.arange(n), :, np.arange(n)] = False
    return np.asarray(1.0 - inside.any(axis=2).mean(axis=1))


def vote_colours(results: Iterable[ColourResult]) -> ColourResult | None:
    """Vote over a track's colour results, weighted by confidence; None if there are none.

    Confidence: the winner's share of the total weight times its mean confidence.
    """
    weights: dict[str, list[float]] = {}
    for r in results:
        weights.setdefault(r.name, []).append(max(float(r.confidence), 1e-3))
    if not weights:
        return None
    winner = max(weights, key=lambda n: sum(weights[n]))
    total = sum(sum(v) for v in weights.values())
    conf = sum(weights[winner]) / total * float(np.mean(weights[winner]))
    return ColourResult(winner, float(conf))
