"""Real labelled images: the training-data manifest and its rebuild, label formats
(YOLO, VOC, COCO), warping perspective images into fisheye geometry, and scoring a
detector on a labelled folder (`trafficprn model eval`).

Sits above `detect/` and `camera/` (it runs detectors and uses the lens models) and
below `cli.py`; see docs/design-changes.md.
"""
