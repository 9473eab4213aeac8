"""Class names: COCO's 80 (darknet's `coco.names` order) and their mapping onto
`VehicleClass`, so a COCO model can drive the traffic pipeline."""

from __future__ import annotations

from trafficprn.types import VehicleClass

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorbike", "aeroplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "sofa", "pottedplant", "bed",
    "diningtable", "toilet", "tvmonitor", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

_ALIASES = {
    "car": VehicleClass.CAR,
    "bus": VehicleClass.BUS,
    "truck": VehicleClass.TRUCK,
    "motorbike": VehicleClass.MOTORCYCLE,
    "motorcycle": VehicleClass.MOTORCYCLE,
    "bicycle": VehicleClass.BICYCLE,
    "person": VehicleClass.PERSON,
}


def to_vehicle_class(name: str) -> VehicleClass | None:
    """The `VehicleClass` a model's class name stands for, or None for other objects."""
    return _ALIASES.get(name.strip().lower())


def default_class_names(count: int) -> list[str]:
    """COCO names for an 80-class model, else `class0`, `class1`, ..."""
    if count == len(COCO_CLASSES):
        return list(COCO_CLASSES)
    return [f"class{i}" for i in range(count)]
