"""One module per resource; ``ROUTERS`` is the list ``create_app`` mounts."""

from fastapi import APIRouter

from geo_api.routes import collections, health

ROUTERS: list[APIRouter] = [health.router, collections.router]
