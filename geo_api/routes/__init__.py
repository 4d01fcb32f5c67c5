"""One module per resource; ``ROUTERS`` is the list ``create_app`` mounts."""

from fastapi import APIRouter

from geo_api.routes import health, pages

ROUTERS: list[APIRouter] = [health.router, pages.router]
