"""Vector-tile engine (built on the layer registry)."""
