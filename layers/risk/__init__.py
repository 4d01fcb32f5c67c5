"""Risk: GB 18218 grading, enterprise ratings, risk units, pipelines, zones, surface, hexagons."""
