"""GeoRisk HTTP service: ``create_app(settings)`` plus the ``georisk`` command line."""

from geo_api.app import create_app

__all__ = ["create_app"]
