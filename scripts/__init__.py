"""Demo-city generator, local PostGIS bootstrap and benchmarks."""
