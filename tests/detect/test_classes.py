"""COCO names and their mapping onto the traffic classes."""

from __future__ import annotations

import pytest

from trafficprn.detect.classes import COCO_CLASSES, default_class_names, to_vehicle_class
from trafficprn.types import VehicleClass


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("car", VehicleClass.CAR),
        ("bus", VehicleClass.BUS),
        ("truck", VehicleClass.TRUCK),
        ("motorbike", VehicleClass.MOTORCYCLE),
        ("motorcycle", VehicleClass.MOTORCYCLE),
        ("Bicycle ", VehicleClass.BICYCLE),
        ("person", VehicleClass.PERSON),
        ("train", None),
        ("traffic light", None),
    ],
)
def test_to_vehicle_class(name: str, expected: VehicleClass | None) -> None:
    assert to_vehicle_class(name) is expected


def test_coco_names_in_darknet_order() -> None:
    assert len(COCO_CLASSES) == len(set(COCO_CLASSES)) == 80
    assert COCO_CLASSES[:8] == ("person", "bicycle", "car", "motorbike", "aeroplane", "bus", "train", "truck")
    assert COCO_CLASSES[-1] == "toothbrush"
    assert default_class_names(80) == list(COCO_CLASSES)
    assert default_class_names(3) == ["class0", "class1", "class2"]
