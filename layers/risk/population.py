"""People within a ring around a site, summed from a population raster (GeoTIFF, rasterio).

GB 18218-2018's α counts people within 500 m *outside* the plant boundary, so callers pass the
ring (buffer minus site). Cells are counted when their centre falls inside the ring.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import WindowError
from rasterio.mask import mask
from shapely.geometry.base import BaseGeometry


class PopulationRaster:
    def __init__(self, path: Path) -> None:
        self.path = path

    def sum_within(self, rings: Sequence[BaseGeometry | None]) -> list[int | None]:
        """People in each ring; None where the ring lies outside the raster or is missing."""
        results: list[int | None] = []
        with rasterio.open(self.path) as dataset:
            nodata = dataset.nodata
            for ring in rings:
                if ring is None or ring.is_empty:
                    results.append(None)
                    continue
                try:
                    data, _ = mask(dataset, [ring], crop=True, filled=False)
                except (ValueError, WindowError):  # no overlap with the raster
                    results.append(None)
                    continue
                values = np.ma.masked_invalid(data.astype("float64"))
                if nodata is not None:
                    values = np.ma.masked_equal(values, nodata)
                results.append(round(float(values.sum())) if values.count() else 0)
        return results
