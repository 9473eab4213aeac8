"""The error hierarchy. Every error a user can cause is one of these, with a message
that says what was expected and what arrived. The CLI prints them on one line."""

from __future__ import annotations


class TrafficPRNError(Exception):
    """Base of every error trafficprn raises on purpose."""


class ConfigError(TrafficPRNError):
    """A config file or value is wrong. `field` is the path of the field, e.g.
    ``cameras[0].lens.fov_deg``; `source` the file (and line) where known."""

    def __init__(self, message: str, *, field: str | None = None, source: str | None = None):
        self.field = field
        self.source = source
        parts = [p for p in (source, field) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ScenarioError(ConfigError):
    """A simulation scenario is impossible or malformed."""


class CalibrationError(TrafficPRNError):
    """Ground calibration cannot be fitted or used (degenerate points, outside the image)."""


class GeometryError(TrafficPRNError):
    """Array shapes or geometric input are wrong."""


class ModelError(TrafficPRNError):
    """A model file (cfg, weights, onnx, json) cannot be read or does not match."""


class WeightsError(ModelError):
    """A darknet .weights file is truncated, too long or malformed."""


class InputError(TrafficPRNError):
    """An image, video or data file given by the user cannot be read."""


class SourceError(TrafficPRNError):
    """A frame source failed in a way that reconnecting cannot fix (bad URL scheme, ...)."""


class DependencyError(TrafficPRNError):
    """An optional dependency is missing; the message says how to install it."""


class StoreError(TrafficPRNError):
    """The database cannot be reached or used."""


class TrackingError(TrafficPRNError):
    """Tracker input is malformed (e.g. a MOT file row)."""


class SetupError(TrafficPRNError):
    """Footage cannot support a setup suggestion (too short, no moving traffic, a still image,
    a moving camera, too few road directions to calibrate); the message says what is missing.
    `trafficprn setup suggest` exits with status 2 on it."""
