"""The domain, in rooms by concern. Never imports FastAPI, ``geo_api`` or ``scripts``.

- ``core``: colours, vocabularies, schema, change notices, partitions, COPY, periodic tasks;
- ``catalog``: the one declaration of every layer, and what is derived from it;
- ``collections``: reading and writing the REST collections the catalogue declares;
- ``risk``: GB 18218, enterprise ratings, risk units, pipelines, zones, surface, hexagons;
- ``monitoring``: readings, alarm levels and the alarm lifecycle;
- ``transport``: tanker fixes, stops and episodes, geofence rules, alerts;
- ``prevention``: hidden dangers, inspection tasks, scores, the watch list;
- ``alerts``: feeds, statistics, CAP 1.2, webhooks;
- ``access``: roles and views, API keys, the audit log;
- ``imports``: files, coordinate systems and validation of incoming features;
- ``demo_city``: the generated demo city and its demo keys.
"""
