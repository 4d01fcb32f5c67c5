"""One module per resource; ``ROUTERS`` is the list ``create_app`` mounts."""

from fastapi import APIRouter

from geo_api.routes import health

ROUTERS: list[APIRouter] = [health.router]
