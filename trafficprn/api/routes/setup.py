"""Setup routes beyond the zones: the suggestion of `trafficprn setup suggest`, the
calibration check grid, map pairs, and saving lens and calibration into site.yaml.

Writes follow the zones save (`live.put_zones`): the API key, the body limit
(api/limits.py), the site file's lock and ruamel round trip (api/site_file.py), 422 naming
the field for an invalid body, 409 when site.yaml on disk is broken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from fastapi import APIRouter, Depends, HTTPException, Query

from trafficprn.api.deps import ContextDep, SiteDep, camera_or_404, read_access, require_key, site_write_errors
from trafficprn.api.schemas_setup import (
    CalibrationCheckIn,
    CalibrationCheckOut,
    CalibrationIn,
    CalibrationOut,
    GridLineOut,
    MapFitIn,
    MapFitOut,
    PointResidual,
    SuggestionOut,
    SuggestionUpload,
)
from trafficprn.camera.calibration import Calibration
from trafficprn.camera.check_grid import check_grid
from trafficprn.camera.lens import make_lens
from trafficprn.camera.map_pairs import fit_map_pairs
from trafficprn.config import CalibrationConfig, CalibrationPoint, CameraConfig, parse_site
from trafficprn.errors import CalibrationError, ConfigError

router = APIRouter(prefix="/api/cameras", tags=["live and setup"], dependencies=[Depends(read_access)])
SUGGESTED_FILE = "suggested.yaml"
MAX_YAML_NODES = 200_000  # a suggested.yaml's nodes after YAML aliases are expanded
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or wrong API key"}, 413: {"description": "body over the size limit"},
    422: {"description": "invalid body; the detail names the field"}}


# ---------------------------------------------------------------- suggestion
def _count_nodes(root: Any) -> None:
    """Refuse a document with more than MAX_YAML_NODES values once aliases are expanded (a
    few lines of anchors can stand for billions of values)."""
    stack, seen = [root], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_YAML_NODES:
            raise ConfigError(f"has more than {MAX_YAML_NODES} values (after expanding YAML aliases)",
                              source=SUGGESTED_FILE)
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def parse_suggested(text: str, camera: CameraConfig) -> CameraConfig:
    """The camera named like `camera` from a suggested.yaml's text, validated as a whole
    site. Raises ConfigError naming the field (or the YAML line)."""
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError("is nested too deeply to be a site.yaml", source=SUGGESTED_FILE) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{SUGGESTED_FILE}:{mark.line + 1}" if mark else SUGGESTED_FILE
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", source=where) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a complete site.yaml (a mapping with site and cameras)", source=SUGGESTED_FILE)
    _count_nodes(data)
    site = parse_site(data, source=SUGGESTED_FILE)
    names = [c.name for c in site.cameras]
    if camera.name not in names:
        raise ConfigError(f"has no camera named {camera.name!r}; it has {names}", field="cameras",
                          source=SUGGESTED_FILE)
    i = names.index(camera.name)
    found = site.cameras[i]
    if tuple(found.lens.image_size) != tuple(camera.lens.image_size):
        raise ConfigError(f"is for a {list(found.lens.image_size)} px image, camera {camera.name!r} gives "
                          f"{list(camera.lens.image_size)} px", field=f"cameras[{i}].lens.image_size",
                          source=SUGGESTED_FILE)
    return found


def _suggestion_out(cam: CameraConfig, origin: str) -> SuggestionOut:
    w, h = cam.lens.image_size
    return SuggestionOut(camera=cam.name, origin=origin, image_size=(int(w), int(h)), legs=list(cam.legs),
                         lanes=list(cam.lanes), lens=cam.lens, calibration=cam.calibration,
                         suggestion=cam.suggestion)


@router.get("/{name}/suggestion", response_model=SuggestionOut,
            summary="The camera's suggested legs, lanes and calibration from suggested.yaml beside site.yaml",
            responses={404: {"description": "no suggested.yaml, or none for this camera"},
                       409: {"description": "suggested.yaml on disk is invalid"}})
def get_suggestion(name: str, site: SiteDep, ctx: ContextDep) -> SuggestionOut:
    cam = camera_or_404(site, name)
    path = Path(str(ctx.settings.site_path)).parent / SUGGESTED_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HTTPException(404, f"no {SUGGESTED_FILE} beside the site config; run `trafficprn setup suggest VIDEO "
                                 f"--site site.yaml --camera {name} --out {SUGGESTED_FILE}`, or upload one") from None
    except OSError as exc:
        raise HTTPException(503, f"cannot read {SUGGESTED_FILE}: {exc.strerror}") from None
    try:
        found = parse_suggested(text, cam)
    except ConfigError as exc:
        if exc.field == "cameras":
            raise HTTPException(404, str(exc)) from None
        raise HTTPException(409, f"{exc}; run `trafficprn setup suggest` again or fix it by hand") from None
    return _suggestion_out(found, "server")


@router.post("/{name}/suggestion", response_model=SuggestionOut, dependencies=[Depends(require_key)],
             summary="Read an uploaded suggested.yaml (API key): the camera's legs, lanes, lens, calibration "
                     "and support; nothing is saved", responses=WRITE_ERRORS)
def post_suggestion(name: str, body: SuggestionUpload, site: SiteDep) -> SuggestionOut:
    cam = camera_or_404(site, name)
    return _suggestion_out(parse_suggested(body.yaml, cam), "upload")  # ConfigError -> 422


# ---------------------------------------------------------------- calibration
def _fitted(cam: CameraConfig, body: CalibrationIn | None = None) -> Calibration:
    """The camera's calibration, or the one in `body` for its camera; 422 when it does not fit."""
    if body is not None:
        cam = cam.model_copy(update={"lens": body.lens, "calibration": body.calibration})
    try:
        return Calibration.from_camera(cam)
    except CalibrationError as exc:
        raise HTTPException(422, f"calibration: {exc}") from None


def _residuals(cal: Calibration) -> list[PointResidual]:
    back = cal.ground_to_image(cal.ground_m) if len(cal.ground_m) else np.zeros((0, 2))
    out = []
    for i in range(len(cal.image_px)):
        finite = bool(np.isfinite(back[i]).all())
        out.append(PointResidual(
            image_px=(float(cal.image_px[i, 0]), float(cal.image_px[i, 1])),
            ground_m=(float(cal.ground_m[i, 0]), float(cal.ground_m[i, 1])),
            back_px=(round(float(back[i, 0]), 2), round(float(back[i, 1]), 2)) if finite else None,
            residual_m=round(float(cal.residuals_m[i]), 4), residual_px=round(float(cal.residuals_px[i]), 3),
            inlier=bool(cal.inliers[i])))
    return out


def _check_out(name: str, cal: Calibration, spacing_m: float) -> CalibrationCheckOut:
    try:
        grid = check_grid(cal, spacing_m)
    except CalibrationError as exc:
        raise HTTPException(422, f"calibration: {exc}") from None
    lines = [GridLineOut(axis=line.axis, value_m=line.value_m,
                         pieces_px=[[(float(x), float(y)) for x, y in piece] for piece in line.pieces_px])
             for line in grid.lines]
    return CalibrationCheckOut(camera=name, method=cal.method, rms_m=cal.rms_m, rms_px=cal.rms_px,
                               spacing_m=grid.spacing_m, extent_m=grid.extent_m, origin_px=grid.origin_px,
                               lines=lines, points=_residuals(cal))


@router.get("/{name}/calibration", response_model=CalibrationOut,
            summary="The camera's saved lens and calibration, with the fit's RMS (or the problem when it "
                    "does not fit)")
def get_calibration(name: str, site: SiteDep) -> CalibrationOut:
    cam = camera_or_404(site, name)
    try:
        cal = Calibration.from_camera(cam)
    except CalibrationError as exc:  # still the lens and points, to mend them on the page
        return CalibrationOut(camera=name, lens=cam.lens, calibration=cam.calibration, rms_m=None, rms_px=None,
                              problem=str(exc))
    return CalibrationOut(camera=name, lens=cam.lens, calibration=cam.calibration, rms_m=cal.rms_m,
                          rms_px=cal.rms_px)


@router.get("/{name}/calibration/check", response_model=CalibrationCheckOut,
            summary="The saved calibration's check grid: ground lines projected to image px")
def get_check(name: str, site: SiteDep,
              spacing_m: Annotated[float, Query(gt=0, le=100, allow_inf_nan=False)] = 5.0) -> CalibrationCheckOut:
    return _check_out(name, _fitted(camera_or_404(site, name)), spacing_m)


@router.post("/{name}/calibration/check", response_model=CalibrationCheckOut, dependencies=[Depends(require_key)],
             summary="The check grid of a proposed lens and calibration (API key; nothing is saved)",
             responses=WRITE_ERRORS)
def post_check(name: str, body: CalibrationCheckIn, site: SiteDep) -> CalibrationCheckOut:
    cam = camera_or_404(site, name)
    return _check_out(name, _fitted(cam, body), body.spacing_m)


@router.post("/{name}/calibration/fit-map", response_model=MapFitOut, dependencies=[Depends(require_key)],
             summary="Fit calibration points from map pairs: camera px <-> aerial px of known scale "
                     "(API key; nothing is saved)", responses=WRITE_ERRORS)
def post_fit_map(name: str, body: MapFitIn, site: SiteDep) -> MapFitOut:
    camera_or_404(site, name)
    lens = make_lens(body.lens)
    try:
        fit = fit_map_pairs(lens, [p.image_px for p in body.pairs], [p.aerial_px for p in body.pairs],
                            body.metres_per_px, body.origin_px)
    except CalibrationError as exc:
        raise HTTPException(422, f"pairs: {exc}") from None
    points = [CalibrationPoint(image_px=(float(px[0]), float(px[1])), ground_m=(float(gm[0]), float(gm[1])))
              for px, gm in zip(fit.image_px, fit.ground_m, strict=True)]
    cal = fit.calibration
    return MapFitOut(camera=name, calibration=CalibrationConfig(points=points), rms_m=cal.rms_m,
                     rms_px=cal.rms_px, points=_residuals(cal))


@router.put("/{name}/calibration", response_model=CalibrationOut, dependencies=[Depends(require_key)],
            summary="Replace the camera's lens and calibration in site.yaml (API key)",
            responses={**WRITE_ERRORS, 409: {"description": "site.yaml on disk is broken; fix it by hand first"}})
def put_calibration(name: str, body: CalibrationIn, ctx: ContextDep, site: SiteDep) -> CalibrationOut:
    _fitted(camera_or_404(site, name), body)
    with site_write_errors():
        checked = ctx.site.write_calibration(
            name,
            body.lens.model_dump(mode="json", exclude_unset=True),
            body.calibration.model_dump(mode="json", exclude_unset=True, exclude_none=True),
        )
    return get_calibration(name, checked)
