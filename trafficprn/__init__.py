"""trafficprn: traffic-flow analysis for intersection cameras with a PRN detector."""

__version__ = "0.1.0"
