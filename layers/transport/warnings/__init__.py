"""The warning models of the transport chain (issue 14 item 3; docs/transport.md §4).

Each model is one module in this package with its source and default thresholds named; it
exposes a ``MODEL`` (:class:`layers.transport.warnings.model.WarningModel`) whose ``judge`` turns
a batch of newly stored fixes into alerts of its rules through the common lifecycle
(``layers/transport/alerts.py``: one alert per vehicle, rule, zone and episode; CAP, SSE,
webhooks and routing follow from there). ``registry.py`` lists the models the ingest runs.
"""
