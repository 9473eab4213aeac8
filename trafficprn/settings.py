"""Process settings from the environment (TRAFFICPRN_*). Built explicitly, never at import."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAFFICPRN_", extra="ignore")

    database_url: str = Field("sqlite:///trafficprn.sqlite", description="SQLAlchemy URL of the event database.")
    api_key: str | None = Field(None, description="Key for plates and state changes (X-API-Key header).")
    plate_secret: str | None = Field(None, description="HMAC secret for plate hashes, one per deployment.")
    require_key_for_reads: bool = Field(False, description="Require the API key for read-only counts too.")
    cors_origins: list[str] = Field(default_factory=list, description="Allowed CORS origins; closed by default.")
    site_path: str | None = Field(None, description="Path of site.yaml, for the API's camera list and setup page.")
    spool_dir: str = Field("spool", description="Where the event sink spools while the DB is down.")
    debug: bool = Field(False, description="Print tracebacks on errors.")
    memory_events: int = Field(
        20_000, ge=1, description="Events a worker holds in memory while its spool cannot be written (disk full)."
    )
    heartbeat_s: float = Field(10.0, gt=0, description="Seconds between a worker's heartbeats.")
    stale_s: float = Field(
        30.0, gt=0, description="A camera without a heartbeat for this long is stale; its time counts as missing."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body the API reads (bytes); larger ones get 413 unread."
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="Seconds a client has to send a request body; slower ones get 408."
    )
    worker_bind: str = Field(
        "127.0.0.1", description="Address a worker's HTTP endpoint (/metrics, /live.mjpg, ...) listens on."
    )
    worker_token: str | None = Field(
        None, description="When set, a worker's HTTP endpoint requires it (Authorization: Bearer); the API sends it."
    )
    session_hours: float = Field(
        12.0, gt=0, description="Lifetime of the browser session cookie issued for the API key (live view, SSE)."
    )
    banner: str | None = Field(None, description="A notice the dashboard shows on top of every page (the demo: "
                               "\"simulated scene\").")
    mqtt_username: str | None = Field(None, description="User name at the MQTT broker of outputs.mqtt.")
    mqtt_password: str | None = Field(None, description="Password at the MQTT broker of outputs.mqtt.")
