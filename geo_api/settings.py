"""Settings, one pydantic-settings class per concern, all read from ``GEORISK_*`` variables.

Nothing is read at import time: callers build ``Settings()`` and hand it to ``create_app`` or
the CLI, so tests construct their own without patching globals.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    """Where PostGIS is. Without a URL, the private cluster that ``georisk db up`` started."""

    model_config = SettingsConfigDict(
        env_prefix="GEORISK_DB_", extra="ignore", populate_by_name=True
    )

    url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("GEORISK_DATABASE_URL", "DATABASE_URL"),
        description="postgresql:// URL of an existing PostGIS; unset → the local cluster",
    )
    data_dir: Path = Field(
        default=Path(".data"),
        validation_alias=AliasChoices("GEORISK_DATA_DIR"),
        description="home of the private cluster (.data/pg) and of generated demo data",
    )
    name: str = Field(default="georisk", description="database name in the private cluster")
    pool_min: int = Field(default=1, ge=1)
    pool_max: int = Field(default=8, ge=1, le=200)
    statement_timeout_ms: int = Field(default=30_000, ge=100)

    def resolved_url(self) -> str:
        """The URL to connect to; explains what to do when there is none."""
        if self.url:
            return self.url
        from scripts.pg_local import LocalCluster  # the CLI-level bootstrap owns this file

        cluster = LocalCluster(self.data_dir)
        port = cluster.recorded_port()
        if port is None:
            raise RuntimeError(
                "No database configured: set DATABASE_URL to a PostGIS database, "
                "or run `georisk db up` (or `make run`) to start the private cluster."
            )
        return f"postgresql://georisk@127.0.0.1:{port}/{self.name}"


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GEORISK_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, validation_alias=AliasChoices("PORT", "GEORISK_PORT"))
    max_page_size: int = Field(default=10_000, ge=1, description="largest `limit` accepted")
    default_page_size: int = Field(default=1_000, ge=1)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    log_level: str = "info"
    basemap_url: str | None = Field(
        default=None,
        description="XYZ template of a base map (e.g. Tianditu or OSM); unset → plain background",
    )


class Settings(BaseSettings):
    """Everything the app needs, grouped by concern."""

    model_config = SettingsConfigDict(env_prefix="GEORISK_", extra="ignore", populate_by_name=True)

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
