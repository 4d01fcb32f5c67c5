"""Bringing data in: files, coordinate systems, geometry and property validation."""
