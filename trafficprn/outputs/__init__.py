"""Outputs besides the database: MQTT topics and signed webhooks (`site.yaml` `outputs:`).

`build_outputs` makes the camera's `OutputSink`, an `EventSink` the worker fans out to
beside its database sink. Imports only events, config, errors, timebins (+ paho-mqtt, httpx).
"""

from trafficprn.outputs.sink import OutputSink, OutputStats, build_outputs

__all__ = ["OutputSink", "OutputStats", "build_outputs"]
