"""Alembic environment: the URL comes from GeoRisk's settings (or ``-x url=...``)."""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from geo_api.db import sqlalchemy_url
from geo_api.settings import DatabaseSettings
from layers.core.partitions import include_in_autogenerate
from layers.core.schema import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    explicit = context.get_x_argument(as_dictionary=True).get("url")
    if explicit:
        return sqlalchemy_url(explicit)
    configured = config.attributes.get("url")
    return sqlalchemy_url(configured or DatabaseSettings().resolved_url())


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=include_in_autogenerate,
            process_revision_directives=alembic_helpers.writer,
            render_item=alembic_helpers.render_item,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
