"""GDAL as a real client of the test server, in a process of its own.

pyogrio holds the GIL while GDAL pages through an OGC API (its feature loop calls into GDAL
without releasing it), and the test server runs in a thread of the test process: read in the
same process, GDAL's HTTP request would wait forever for a server that cannot run. A spawned
worker process reads instead and sends the frame back.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import geopandas as gpd


def _read(config: dict[str, str], source: str, kw: dict[str, Any]) -> gpd.GeoDataFrame:
    import pyogrio

    pyogrio.set_gdal_config_options(config)
    return pyogrio.read_dataframe(source, **kw)


def _layers(config: dict[str, str], source: str, kw: dict[str, Any]) -> list[str]:
    import pyogrio

    pyogrio.set_gdal_config_options(config)
    if not kw:
        return [str(name) for name, _ in pyogrio.list_layers(source)]
    names, layer = [], 0
    while True:
        try:
            names.append(str(pyogrio.read_info(source, layer=layer, **kw)["layer_name"]))
        except Exception:
            return names
        layer += 1


def _run(fn: Any, *args: Any) -> Any:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result(timeout=120)


def bearer(key: str) -> dict[str, str]:
    """GDAL configuration sending ``key`` as a bearer token (the OGC API drivers set their own
    Accept header, which replaces GDAL_HTTP_HEADERS; the bearer they keep)."""
    return {"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": key, "GDAL_HTTP_TIMEOUT": "60"}


def read_dataframe(source: str, config: dict[str, str], **kw: Any) -> gpd.GeoDataFrame:
    """``pyogrio.read_dataframe(source, **kw)`` under ``config``, in a worker process."""
    frame: gpd.GeoDataFrame = _run(_read, config, source, kw)
    return frame


def list_layers(source: str, config: dict[str, str], **kw: Any) -> list[str]:
    """Layer names; ``kw`` are open options (list_layers takes none: read_info per layer)."""
    names: list[str] = _run(_layers, config, source, kw)
    return names
