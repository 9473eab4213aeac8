"""Regenerate the example site (`examples/site.yaml`) and its frame (`examples/fisheye-1.jpg`).

A synthetic four-arm junction (two 14 m roads, two lanes each way, right-hand traffic)
seen by an overhead equidistant fisheye 8 m up. The surveyed points, the leg zones and the
lanes are the junction's ground geometry projected through the same camera, so
`trafficprn calibrate --site examples/site.yaml --camera fisheye-1 --image examples/fisheye-1.jpg`
shows a grid that fits the road.

    python examples/make_example.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from trafficprn.camera.calibration import pose_rotation
from trafficprn.camera.lens import make_lens
from trafficprn.config import EquidistantLens

HERE = Path(__file__).resolve().parent
HALF_ROAD_M = 7.0
LANE_M = 3.5
STOP_M = 11.0  # stop line distance from the junction centre
ARMS = {"N": 0, "E": 1, "S": 2, "W": 3}  # quarter turns clockwise from north

LENS = EquidistantLens(model="equidistant", image_size=(1280, 1280), center_px=(640, 640), radius_px=630, fov_deg=185)
HEIGHT_M, TILT_DEG, YAW_DEG, POSITION_M = 8.0, 87.0, 12.0, (1.0, -1.5)


def rotate(xy: np.ndarray, quarters: int) -> np.ndarray:
    """Rotate ground points clockwise by quarter turns (N arm -> E arm -> ...)."""
    out = np.asarray(xy, dtype=np.float64)
    for _ in range(quarters % 4):
        out = np.stack([out[..., 1], -out[..., 0]], axis=-1)
    return out


class Camera:
    def __init__(self) -> None:
        self.lens = make_lens(LENS)
        y = np.radians(YAW_DEG)
        rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1.0]])
        self.rot = rz @ pose_rotation(TILT_DEG)
        self.centre = np.array([*POSITION_M, HEIGHT_M])

    def to_image(self, ground_m: np.ndarray) -> np.ndarray:
        g = np.asarray(ground_m, dtype=np.float64).reshape(-1, 2)
        p = np.hstack([g, np.zeros((len(g), 1))]) - self.centre
        return self.lens.project(p @ self.rot)

    def to_ground(self, px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self.lens.unproject(px) @ self.rot.T
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(d[:, 2] < -1e-6, -self.centre[2] / d[:, 2], np.nan)
        return self.centre[:2] + d[:, :2] * t[:, None], np.isfinite(t)


def paint(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """BGR colour of ground points (N,) x, y in m."""
    col = np.empty((len(x), 3))
    col[:] = (70, 120, 80)  # grass
    for q in range(4):
        a = rotate(np.stack([x, y], 1), -q)  # into the N arm's frame
        ax, ay = a[:, 0], a[:, 1]
        arm = ay > HALF_ROAD_M
        side = arm & (np.abs(ax) >= HALF_ROAD_M) & (np.abs(ax) < HALF_ROAD_M + 3)
        col[side] = (150, 158, 165)
        road = arm & (np.abs(ax) < HALF_ROAD_M)
        col[road] = (80, 82, 84)
        centre_line = road & (ay > STOP_M) & (np.abs(np.abs(ax) - 0.15) < 0.06)
        col[centre_line] = (40, 190, 230)
        dashes = road & (ay > STOP_M + 1) & (np.abs(np.abs(ax) - LANE_M) < 0.07) & ((ay % 6.0) < 3.0)
        col[dashes] = (225, 228, 230)
        stop = road & (ax < 0) & (ay >= STOP_M) & (ay < STOP_M + 0.4)
        col[stop] = (225, 228, 230)
        zebra = road & (ay > 7.5) & (ay < 10.5) & ((np.abs(ax) % 1.0) < 0.5)
        col[zebra] = (225, 228, 230)
    box = (np.abs(x) < HALF_ROAD_M) & (np.abs(y) < HALF_ROAD_M)
    col[box] = (80, 82, 84)
    return col


def render(cam: Camera, supersample: int = 2) -> np.ndarray:
    w, h = LENS.image_size
    s = supersample
    ys, xs = np.mgrid[0 : h * s, 0 : w * s]
    px = np.stack([(xs.ravel() + 0.5) / s - 0.5, (ys.ravel() + 0.5) / s - 0.5], 1)
    ground, hit = cam.to_ground(px)
    col = np.empty((len(px), 3))
    col[:] = (235, 205, 170)  # sky
    col[hit] = paint(ground[hit, 0], ground[hit, 1])
    dist = np.linalg.norm(ground - cam.centre[:2], axis=1)
    haze = np.clip((np.nan_to_num(dist, nan=1e9) - 40) / 120, 0, 0.8)[:, None]
    col = col * (1 - haze) + np.array([200, 195, 190]) * haze
    col[~cam.lens.valid(px)] = 0
    img = col.reshape(h * s, w * s, 3).astype(np.float32)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA).round().astype(np.uint8)


def outline(cam: Camera, corners_m: np.ndarray, per_edge: int = 4) -> list[list[float]]:
    """A ground polygon as image px, its edges subdivided (straight lines bend in a fisheye)."""
    pts = []
    for a, b in zip(corners_m, np.roll(corners_m, -1, axis=0), strict=True):
        for t in np.arange(per_edge) / per_edge:
            pts.append(a + (b - a) * t)
    return [[round(float(u), 1), round(float(v), 1)] for u, v in cam.to_image(np.array(pts))]


def fmt(points: list[list[float]]) -> str:
    return "[" + ", ".join(f"[{u:g}, {v:g}]" for u, v in points) + "]"


def main() -> None:
    cam = Camera()
    rng = np.random.default_rng(2024)
    cv2.imwrite(str(HERE / "fisheye-1.jpg"), render(cam), [cv2.IMWRITE_JPEG_QUALITY, 88])

    survey_m = [rotate(np.array([[-HALF_ROAD_M, STOP_M], [0.0, STOP_M]]), ARMS[a]) for a in ARMS]
    survey_m.append(np.array([[-LANE_M, 31.0], [31.0, LANE_M]]))  # two far dash ends
    ground = np.vstack(survey_m)
    image = cam.to_image(ground) + rng.normal(0, 0.3, (len(ground), 2))  # clicked by hand
    points = "\n".join(
        f"        - {{image_px: [{u:.1f}, {v:.1f}], ground_m: [{g[0] + 0.0:g}, {g[1] + 0.0:g}]}}"
        for (u, v), g in zip(image, ground, strict=True)
    )
    legs, lanes = [], []
    for name, q in ARMS.items():
        entry = rotate(
            np.array([[-HALF_ROAD_M, STOP_M + 0.5], [0, STOP_M + 0.5], [0, STOP_M + 7], [-HALF_ROAD_M, STOP_M + 7]]), q
        )
        exit_ = rotate(
            np.array([[0, STOP_M + 0.5], [HALF_ROAD_M, STOP_M + 0.5], [HALF_ROAD_M, STOP_M + 7], [0, STOP_M + 7]]), q
        )
        legs.append(
            f"      - name: {name}\n        entry: {fmt(outline(cam, entry))}\n        exit: {fmt(outline(cam, exit_))}"
        )
        for k, (x0, x1) in enumerate([(-LANE_M, 0.0), (-HALF_ROAD_M, -LANE_M)], start=1):
            poly = rotate(np.array([[x0, STOP_M + 0.4], [x1, STOP_M + 0.4], [x1, 45.0], [x0, 45.0]]), q)
            line = cam.to_image(rotate(np.array([[x0, STOP_M + 0.4], [x1, STOP_M + 0.4]]), q))
            lanes.append(
                f"      - name: {name}-{k}\n        leg: {name}\n        polygon: {fmt(outline(cam, poly, 6))}\n"
                f"        stop_line: {fmt([[round(float(a), 1), round(float(b), 1)] for a, b in line])}"
            )
    text = TEMPLATE.format(points=points, legs="\n".join(legs), lanes="\n".join(lanes))
    (HERE / "site.yaml").write_text(text, encoding="utf-8")
    print(f"wrote {HERE / 'site.yaml'} and {HERE / 'fisheye-1.jpg'}")


TEMPLATE = """\
# An example trafficprn site: one box at a four-arm junction with an overhead fisheye.
# Generated by examples/make_example.py (a synthetic junction); edit freely.
# Check the calibration with:
#   trafficprn calibrate --site examples/site.yaml --camera fisheye-1 --image examples/fisheye-1.jpg --out grid.png
# All positions are image px of the raw camera frame unless the name says _m (metres).

site:
  name: example-junction
  timezone: Europe/Berlin        # IANA zone; 15-minute count intervals align to its clock
  driving_side: right            # right | left: decides which turn is "left"
  interval_minutes: 15           # divides 60

privacy:
  plates: hash                   # off | hash | clear (hash: HMAC-SHA256 with TRAFFICPRN_PLATE_SECRET)
  plate_format: auto             # a template (L letter, D digit, * either), a list, a region (us, eu, br, de, ...) or auto
  retention_days: {{passages: 400, plates: 30}}

cameras:
  - name: fisheye-1
    source: rtsp://10.0.0.2/stream1    # or a video file (relative to this file) or /dev/video0
    process_fps: 15                    # frames beyond this rate are dropped, and counted
    live_url: http://worker-fisheye-1:9100
    # The lens: an equidistant fisheye whose image circle (radius 630 px) spans 185 degrees.
    # Other models: {{model: kannala_brandt, image_size, fx, fy, cx, cy, k: [k1, k2, k3, k4]}}
    #   (OpenCV cv2.fisheye calibration), {{model: pinhole, image_size, fx, fy, cx, cy,
    #   dist: [k1, k2, p1, p2, k3]}}, equisolid, stereographic, orthographic (<= 180 deg).
    lens: {{model: equidistant, image_size: [1280, 1280], center_px: [640, 640], radius_px: 630, fov_deg: 185}}
    detector:
      model: bundled                   # or a path to a model .onnx with its .json beside it
      input_size: 416                  # multiple of 32
      views: []                        # optional: detect on dewarped views instead of the raw frame, e.g.
      # views:
      #   - {{name: N, yaw_deg: 0, pitch_deg: 55, fov_deg: 90, size: [640, 480]}}
      #   - {{name: E, yaw_deg: 90, pitch_deg: 55, fov_deg: 90, size: [640, 480]}}
      # yaw: clockwise from image-up around the optical axis; pitch: angle off the axis.
    calibration:
      # >= 4 surveyed pairs spread over the road: a pixel of the raw frame and the same
      # point on the road in metres (any local frame; here x east, y north, origin at the
      # junction centre). More than 4 pairs are fitted with RANSAC; outliers are reported.
      points:
{points}
      # Alternative without a survey: the camera's pose, plus one measured distance.
      # pose: {{height_m: 8.0, tilt_deg: 90, known_distance: {{a_px: [x, y], b_px: [x, y], distance_m: 3.5}}}}
    legs:
      # One per arm, named by compass side. entry: over the inbound lanes just past the stop
      # line; exit: over the outbound lanes. Zones of different legs must not overlap.
{legs}
    lanes:
      # For queue length: each lane upstream of its stop line (two image px points).
{lanes}
    queue: {{stopped_kmh: 5, dwell_s: 2, max_gap_m: 8}}

# Optional: publish events besides the database (absent: no outputs).
# MQTT topics: <topic_prefix>/<site>/<camera>/passage | counts | queue | availability (retained,
# also the last will). Broker credentials: TRAFFICPRN_MQTT_USERNAME / TRAFFICPRN_MQTT_PASSWORD.
# Webhooks: a POST per event, signed X-Trafficprn-Signature: sha256=<HMAC-SHA256 of the body>
# keyed with the value of the environment variable named by secret_env.
# outputs:
#   mqtt:
#     url: mqtt://10.0.0.1:1883          # or mqtts://host:8883 (then tls: {{ca_file: ca.pem}} if not a public CA)
#     topic_prefix: trafficprn
#     qos: 1                             # 0 | 1 (at least once: consumers drop duplicates by uuid)
#     keepalive_s: 30                    # <= 30: the broker reads offline after 1.5x this
#     queue_max_events: 100000           # messages kept on disk while the broker is down
#     # queue_dir: /var/lib/trafficprn/mqtt   # default: beside the worker's spool
#     homeassistant: {{discovery_prefix: homeassistant}}   # optional: Home Assistant MQTT discovery
#   webhooks:
#     - url: https://example.org/trafficprn-hook
#       secret_env: TRAFFICPRN_WEBHOOK_SECRET
#       events: [passage, counts, availability]
"""


if __name__ == "__main__":
    main()
