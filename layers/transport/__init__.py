"""The tanker engine: fix ingest, per-vehicle stop and episode detection, geofence rules, alerts.

docs/domain.md §3. Modules: ``config`` (thresholds), ``parse`` (request bodies → columns),
``detector`` (the numpy state machine, one step per fix index across all vehicles),
``state`` (the detector state in ``vehicle_state``), ``limits`` (speed limit and corridor
distance per fix), ``parking`` (judging a stop's centroid against zones), ``alerts`` (one alert
per episode, NOTIFY), ``engine`` (one batch end to end), ``ingest`` (the HTTP batch path),
``track`` and ``batch`` (the seed's run). The officer's side of alerts (listing, acknowledge,
dispose, escalation) lives in ``layers/alerts/lifecycle.py``.
"""

# The modules here pass numpy columns (per fix, per vehicle) as query parameters: psycopg must
# know to send them as binary arrays before any connection uses them.
from layers.core import pgarrays as _pgarrays  # noqa: F401  (registers the ndarray dumper)
