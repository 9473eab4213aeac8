"""CLI: `trafficprn dewarp` and `trafficprn calibrate` (argparse only at import)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_FISHEYE_VIEWS = (("N", 0.0), ("E", 90.0), ("S", 180.0), ("W", 270.0))


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dewarp",
        help="write dewarped perspective views (and a panorama) of a frame",
        description="Dewarp IMAGE with a camera's lens: one PNG per view, a panorama for fisheyes, "
        "and contact_sheet.png with all views. Uses the camera's detector views, or four default "
        "views (N, E, S, W) when it has none.",
    )
    p.add_argument("image", type=Path, help="a frame of the camera (PNG/JPEG)")
    p.add_argument("--site", type=Path, required=True, help="site.yaml")
    p.add_argument("--camera", required=True, help="camera name in the site config")
    p.add_argument("--view", default=None, help="only this view")
    p.add_argument("--out-dir", type=Path, required=True, help="folder for the PNGs")
    p.set_defaults(func=_dewarp)

    c = subparsers.add_parser(
        "calibrate",
        help="fit and check a camera's ground calibration",
        description="Fit the image -> ground calibration of a camera and print the homography, the "
        "per-point residuals and the RMS. With --out, draw the ground grid (1 m and 5 m lines), the "
        "surveyed points, the legs and the lanes over the frame (or a blank image circle).",
    )
    c.add_argument("--site", type=Path, required=True, help="site.yaml")
    c.add_argument("--camera", required=True, help="camera name in the site config")
    c.add_argument("--image", type=Path, default=None, help="a frame of the camera to draw on")
    c.add_argument("--out", type=Path, default=None, help="PNG to write (default: calibration_<camera>.png)")
    c.set_defaults(func=_calibrate)


def _read_image(path: Path) -> Any:
    import cv2

    from trafficprn.errors import InputError

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read image {path}")
    return image


def _camera(site_path: Path, name: str) -> tuple[Any, int]:
    from trafficprn.config import load_site

    site = load_site(site_path)
    cam = site.camera(name)
    return cam, site.cameras.index(cam)


def _dewarp(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from trafficprn.camera.dewarp import Dewarper
    from trafficprn.camera.lens import Pinhole
    from trafficprn.camera.overlay import contact_sheet
    from trafficprn.config import ViewConfig
    from trafficprn.errors import InputError

    cam, index = _camera(args.site, args.camera)
    dewarper = Dewarper.from_camera(cam, camera_index=index)
    fisheye = not isinstance(dewarper.lens, Pinhole)
    if not dewarper.view_names:
        if fisheye:
            defaults = [
                ViewConfig(name=n, yaw_deg=yaw, pitch_deg=55.0, fov_deg=90.0) for n, yaw in DEFAULT_FISHEYE_VIEWS
            ]
        else:
            w, h = dewarper.lens.image_size
            cy = dewarper.lens.center_px[1]
            edges = dewarper.lens.unproject([[0.0, cy], [float(w), cy]])
            fov = float(np.degrees(np.arccos(np.clip(edges[0] @ edges[1], -1.0, 1.0))))
            defaults = [ViewConfig(name="undistorted", fov_deg=fov, size=(w, h))]
        dewarper = Dewarper(dewarper.lens, defaults)
    image = _read_image(args.image)
    w, h = dewarper.lens.image_size
    if image.shape[:2] != (h, w):
        raise InputError(f"{args.image} is {image.shape[1]}x{image.shape[0]} px; camera {cam.name!r} expects {w}x{h}")
    names = dewarper.view_names
    if args.view is not None:
        if args.view not in names:
            raise InputError(f"camera {cam.name!r} has no view {args.view!r}; views: {', '.join(names)}")
        names = [args.view]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    views = {name: dewarper.view(image, name) for name in names}
    if fisheye and args.view is None:
        views["panorama"] = dewarper.panorama(image)
    for name, img in views.items():
        cv2.imwrite(str(args.out_dir / f"{name}.png"), img)
        print(f"wrote {args.out_dir / f'{name}.png'}")
    sheet = contact_sheet(views)
    cv2.imwrite(str(args.out_dir / "contact_sheet.png"), sheet)
    print(f"wrote {args.out_dir / 'contact_sheet.png'}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from trafficprn.camera.calibration import Calibration
    from trafficprn.camera.overlay import draw_ground_grid, draw_zones
    from trafficprn.errors import InputError

    cam, _ = _camera(args.site, args.camera)
    cal = Calibration.from_camera(cam)
    print(f"camera {cam.name}: {cam.lens.model} lens, calibration from {cal.method}")
    print("ray -> ground homography G (ground_h = G @ unit_ray, ray from the lens model):")
    for row in cal.ray_to_ground:
        print("  [" + "  ".join(f"{v: .6e}" for v in row) + "]")
    if len(cal.image_px):
        mapped = cal.image_to_ground(cal.image_px)
        print(f"{'#':>3} {'image px':>18} {'ground m':>18} {'mapped m':>18} {'err m':>7} {'err px':>7}  used")
        for i in range(len(cal.image_px)):
            px, gm, mm = cal.image_px[i], cal.ground_m[i], mapped[i]
            print(
                f"{i:>3} {px[0]:8.1f} {px[1]:8.1f}  {gm[0]:8.2f} {gm[1]:8.2f}  {mm[0]:8.2f} {mm[1]:8.2f} "
                f"{cal.residuals_m[i]:7.3f} {cal.residuals_px[i]:7.2f}  {'yes' if cal.inliers[i] else 'OUTLIER'}"
            )
    if cal.rms_m is not None and cal.rms_px is not None:
        print(f"RMS: {cal.rms_m:.3f} m, {cal.rms_px:.2f} px over {int(cal.inliers.sum())} points")
    else:
        print("RMS: no surveyed points to check against")
    if args.image is not None:
        image = _read_image(args.image)
        w, h = cal.lens.image_size
        if image.shape[:2] != (h, w):
            raise InputError(
                f"{args.image} is {image.shape[1]}x{image.shape[0]} px; camera {cam.name!r} expects {w}x{h}"
            )
    else:
        w, h = cal.lens.image_size
        image = np.full((h, w, 3), 32, np.uint8)
        ys, xs = np.mgrid[0:h, 0:w]
        inside = cal.lens.valid(np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)).reshape(h, w)
        image[inside] = (64, 64, 64)
    drawn = draw_zones(draw_ground_grid(image, cal), cam)
    out = args.out or Path(f"calibration_{cam.name}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), drawn)
    print(f"wrote {out}")
    return 0
