"""Traffic analytics: movements, speed, queues, vehicle type, colour and plates.

Modules are imported directly (`trafficprn.analytics.speed`, ...); nothing is
re-exported here so that each can be used without loading the others."""
