"""Request and response bodies of the setup routes: suggestion, calibration check, map pairs."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trafficprn.config import (
    CalibrationConfig,
    FiniteFloat,
    LaneConfig,
    LegConfig,
    LensConfig,
    Point,
    Suggestion,
)

MAX_CALIBRATION_POINTS = 256
MAX_MAP_PAIRS = 64
MAX_SUGGESTION_CHARS = 512_000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SuggestionUpload(_In):
    yaml: str = Field(max_length=MAX_SUGGESTION_CHARS,
                      description="The text of a suggested.yaml (a complete site.yaml written by "
                                  "`trafficprn setup suggest`).")


class SuggestionOut(BaseModel):
    camera: str
    origin: str = Field(description="Where it came from: suggested.yaml beside the site file, or an upload.")
    image_size: tuple[int, int]
    legs: list[LegConfig]
    lanes: list[LaneConfig]
    lens: LensConfig
    calibration: CalibrationConfig
    suggestion: Suggestion | None = Field(description="Support per leg and lane (tracks) and how the "
                                                      "calibration was fitted; None for a plain site.yaml.")


def _bounded_points(value: Any) -> Any:
    points = value.get("points") if isinstance(value, dict) else None
    if isinstance(points, list) and len(points) > MAX_CALIBRATION_POINTS:
        raise ValueError(f"calibration.points: expected at most {MAX_CALIBRATION_POINTS} point pairs, "
                         f"got {len(points)}")
    return value


def _non_finite(node: Any, path: str) -> str | None:
    """The path of the first inf or nan in a JSON body (lens models take any float)."""
    if isinstance(node, float) and not math.isfinite(node):
        return path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found = _non_finite(value, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key)
        if found:
            return found
    return None


class _FiniteIn(_In):
    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        found = _non_finite(data, "")
        if found:
            raise ValueError(f"{found}: expected a finite number")
        return data


class CalibrationIn(_FiniteIn):
    lens: LensConfig = Field(description="The camera's lens model (as in site.yaml).")
    calibration: CalibrationConfig = Field(description="Point pairs (>= 4) or a pose (as in site.yaml).")

    _bounded = field_validator("calibration", mode="before")(_bounded_points)


class CalibrationCheckIn(CalibrationIn):
    spacing_m: FiniteFloat = Field(5.0, gt=0, le=100, description="Ground grid spacing, m (widened for "
                                                                 "large areas).")


class PointResidual(BaseModel):
    image_px: Point
    ground_m: Point
    back_px: Point | None = Field(description="The ground point projected back to the image.")
    residual_m: float
    residual_px: float
    inlier: bool


class GridLineOut(BaseModel):
    axis: str = Field(description="x: the line x = value_m (running north-south); y: y = value_m.")
    value_m: float
    pieces_px: list[list[Point]] = Field(description="Visible runs of the line, image px.")


class CalibrationCheckOut(BaseModel):
    camera: str
    method: str = Field(description="points or pose: how the calibration maps image px to ground m.")
    rms_m: float | None = Field(description="Ground RMS of the point pairs RANSAC kept, m.")
    rms_px: float | None = Field(description="Image RMS of those pairs, px.")
    spacing_m: float
    extent_m: tuple[float, float, float, float] = Field(description="x_min, y_min, x_max, y_max of the grid, m.")
    origin_px: Point | None = Field(description="The ground origin in image px, where it is seen.")
    lines: list[GridLineOut]
    points: list[PointResidual]


class MapPair(_In):
    image_px: Point = Field(description="[x, y] on the camera image, px.")
    aerial_px: Point = Field(description="[x, y] of the same point on the aerial image, px (y down).")


class MapFitIn(_FiniteIn):
    lens: LensConfig = Field(description="The camera's lens model.")
    metres_per_px: FiniteFloat = Field(gt=0, le=100, description="Scale of the aerial image, m per aerial px.")
    origin_px: Point | None = Field(None, description="Aerial px of the ground origin; default the first pair.")
    pairs: list[MapPair] = Field(min_length=4, max_length=MAX_MAP_PAIRS,
                                 description="Matching clicks: the same point on the camera and the aerial image.")


class MapFitOut(BaseModel):
    camera: str
    calibration: CalibrationConfig = Field(description="Point pairs for site.yaml: image px and ground m "
                                                       "(x east, y north of the origin).")
    rms_m: float | None
    rms_px: float | None
    points: list[PointResidual]


class CalibrationOut(BaseModel):
    camera: str
    lens: LensConfig
    calibration: CalibrationConfig
    rms_m: float | None
    rms_px: float | None
    problem: str | None = Field(None, description="Why the saved calibration does not fit, where it does not.")
