"""The Ningbo-like demo city: generator and loader behind ``georisk seed`` (issue 2 §5)."""

from layers.demo_city.loader import NotEmpty, database_is_empty
from layers.demo_city.seed import SeedReport, seed_demo_city

__all__ = ["NotEmpty", "SeedReport", "database_is_empty", "seed_demo_city"]
