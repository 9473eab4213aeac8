"""Vehicle type by a confidence-weighted majority vote over a track's detections."""

from __future__ import annotations

import numpy as np

from trafficprn.types import FloatArray, VehicleClass

N_CLASSES = len(VehicleClass)


class ClassVote:
    """Accumulates (class, confidence) votes; bounded state (one weight per class)."""

    __slots__ = ("weights",)

    def __init__(self) -> None:
        self.weights: FloatArray = np.zeros(N_CLASSES)

    def add(self, vehicle_class: int, confidence: float) -> None:
        self.weights[vehicle_class] += confidence

    def merge(self, other: ClassVote) -> None:
        self.weights += other.weights

    def result(self) -> tuple[VehicleClass, float]:
        """The winning class and its share of the total weight in [0, 1] (car, 0 when empty)."""
        total = float(self.weights.sum())
        if total <= 0:
            return VehicleClass.CAR, 0.0
        best = int(np.argmax(self.weights))
        return VehicleClass(best), float(self.weights[best] / total)
