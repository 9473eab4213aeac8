"""Setting a camera up from its own traffic: `trafficprn setup suggest`.

Footage goes through the detector and tracker (`tracks.py`); legs and stop lines come from
where tracks enter, stop and leave (`legs.py`), lanes from the lateral spread of queued
tracks (`lanes.py`), a pole camera's calibration from the vanishing directions of vehicle
motion and published vehicle sizes (`calibrate.py`). `suggest.py` puts them into a site.yaml.

Layer: like `pipeline.py` (may import detect, track, camera, analytics, config, geometry);
never `sim`, `store` or `api`.
"""
