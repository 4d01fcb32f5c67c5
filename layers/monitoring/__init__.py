"""Live monitoring points: readings in, alarm levels, colours and the alarm lifecycle out.

``thresholds`` (set points per kind, the one home of GB/T 50493-2019's figures), ``evaluate``
(debounce, hysteresis, flat line over one batch), ``ingest`` (one transaction per batch),
``live`` (colours, stale sweep) and ``alarms`` (raised → acknowledged → disposed → cleared).
"""
