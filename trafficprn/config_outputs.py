"""The `outputs:` section of site.yaml: where a worker publishes its events besides the
database (MQTT, webhooks). Part of the site config (`config.SiteConfig.outputs`); kept in
its own module so that `config.py` stays readable. Secrets never live in the file: MQTT
credentials come from TRAFFICPRN_MQTT_USERNAME / TRAFFICPRN_MQTT_PASSWORD, each webhook's
HMAC secret from the environment variable it names (`secret_env`)."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WebhookEvent = Literal["passage", "counts", "availability"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = ("passage", "counts", "availability")
MQTT_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_topic(v: str) -> str:
    if any(c in v for c in "+#\x00") or v.startswith("/") or v.endswith("/") or "//" in v:
        raise ValueError(f"expected topic levels without + # or empty levels, e.g. 'trafficprn', got {v!r}")
    return v


class MqttTls(_Model):
    ca_file: str | None = Field(
        None, title="CA file", description="PEM file of the CA that signed the broker's certificate (default: system CAs)."
    )
    cert_file: str | None = Field(None, title="Client certificate", description="PEM client certificate, if the broker wants one.")
    key_file: str | None = Field(None, title="Client key", description="PEM key of the client certificate.")
    insecure: bool = Field(
        False, title="Skip host check", description="Accept a certificate whose name is not the broker's host (testing only)."
    )


class HomeAssistant(_Model):
    discovery_prefix: str = Field(
        "homeassistant", min_length=1, title="Discovery prefix", description="Home Assistant's MQTT discovery prefix."
    )
    _prefix = field_validator("discovery_prefix")(_check_topic)


class MqttOutput(_Model):
    url: str = Field(title="Broker URL", description="mqtt://host:port, or mqtts://host:port for TLS (ports 1883 / 8883 by default).")
    topic_prefix: str = Field(
        "trafficprn", min_length=1, title="Topic prefix",
        description="Topics are <prefix>/<site>/<camera>/{passage,counts,queue,availability}.",
    )
    qos: Literal[0, 1] = Field(1, title="QoS", description="0 (at most once) or 1 (at least once; consumers drop duplicates by uuid).")
    tls: MqttTls | None = Field(None, title="TLS", description="Certificates for an mqtts:// broker; only with mqtts://.")
    keepalive_s: int = Field(
        30, ge=1, le=30, title="Keepalive",
        description="Seconds between pings; the broker publishes the last will (offline) after 1.5x this without one.",
    )
    queue_dir: str | None = Field(
        None, title="Queue folder",
        description="Where messages wait while the broker is down (default: beside the worker's spool, <spool>-mqtt).",
    )
    queue_max_events: int = Field(
        100_000, ge=1, title="Queue size", description="Most messages kept while the broker is down; beyond it new ones are dropped and counted."
    )
    queue_period_s: float = Field(5.0, ge=1, le=300, title="Queue summary period", description="Seconds per .../queue summary message.")
    homeassistant: HomeAssistant | None = Field(
        None, title="Home Assistant", description="Optional: publish MQTT discovery configs ({} for the defaults)."
    )
    counts_delay_s: float = Field(
        60.0, ge=0, le=900, title="Counts delay",
        description="Seconds after an interval ends before its .../counts message goes out (passages of vehicles still in view).",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in MQTT_DEFAULT_PORTS:
            raise ValueError(f"expected mqtt://host:port or mqtts://host:port, got {v!r}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"expected a port number in 1..65535, got {v!r}") from None
        if not parts.hostname or port == 0:
            raise ValueError(f"expected mqtt://host:port with a host, got {v!r}")
        if parts.username or parts.password:
            raise ValueError("credentials do not belong in the URL; set TRAFFICPRN_MQTT_USERNAME / TRAFFICPRN_MQTT_PASSWORD")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"expected no path or query in the broker URL, got {v!r}")
        return v

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return _check_topic(v)

    @model_validator(mode="after")
    def _tls_needs_mqtts(self) -> MqttOutput:
        if self.tls is not None and not self.url.startswith("mqtts://"):
            raise ValueError("tls is set but the url is mqtt://; use mqtts:// for TLS")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or MQTT_DEFAULT_PORTS[parts.scheme]

    @property
    def use_tls(self) -> bool:
        return self.url.startswith("mqtts://")


class WebhookOutput(_Model):
    url: str = Field(title="Webhook URL", description="http:// or https:// address that receives a POST per event.")
    secret_env: str = Field(
        title="Secret variable",
        description="Name of the environment variable holding the HMAC-SHA256 key of the X-Trafficprn-Signature header.",
    )
    events: list[WebhookEvent] = Field(
        default_factory=lambda: list(WEBHOOK_EVENTS), min_length=1, title="Events",
        description="Which to send: passage, counts, availability (default: all).",
    )
    timeout_s: float = Field(5.0, gt=0, le=60, title="Timeout", description="Seconds one POST may take.")
    queue_max_events: int = Field(
        10_000, ge=1, title="Queue size", description="Most events waiting for delivery; beyond it new ones are dropped and counted."
    )
    max_backoff_s: float = Field(60.0, ge=0.1, le=3600, title="Longest backoff", description="Cap of the exponential retry delay, s.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {v!r}")
        return v

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if not _ENV_NAME.match(v):
            raise ValueError(f"expected the name of an environment variable such as TRAFFICPRN_WEBHOOK_SECRET, got {v!r}")
        return v

    @field_validator("events")
    @classmethod
    def _unique(cls, v: list[WebhookEvent]) -> list[WebhookEvent]:
        for i, name in enumerate(v):
            if name in v[:i]:
                raise ValueError(f"{name!r} is listed twice")
        return v


class OutputsSection(_Model):
    mqtt: MqttOutput | None = Field(None, title="MQTT", description="Publish events to an MQTT broker.")
    webhooks: list[WebhookOutput] = Field(
        default_factory=list, title="Webhooks", description="POST events, signed, to these URLs."
    )

    @property
    def empty(self) -> bool:
        return self.mqtt is None and not self.webhooks
