"""Coercing user input into (N, K) float64 row arrays, with the shape error STYLE asks for."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trafficprn.errors import GeometryError

FloatArray = npt.NDArray[np.float64]


def as_rows(values: npt.ArrayLike, width: int, name: str) -> FloatArray:
    """(N, width) float64 array; a single (width,) row becomes (1, width); empty becomes (0, width)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, width)
    if arr.ndim == 1 and arr.shape[0] == width:
        arr = arr.reshape(1, width)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise GeometryError(f"{name} must be a 2D array with shape (N, {width}), got shape {arr.shape}")
    return arr
