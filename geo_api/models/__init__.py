"""Response models: what each main resource answers, so /openapi.json documents success bodies.

One module per concern (risk, prevention, rules, alerts, monitoring, access, health, tiles,
transport, streams, ogc), sharing the base types of ``geo_api.models.base``. The REST
collections' models are derived from the catalogue (``collections``), so a new layer documents
itself; bodies that are not JSON (tiles, packages, images, PDF, CSV, CAP, Atom) are documented
by media type (``base.binary``); every error is the problem body of geo_api/errors.py,
documented as JSON whatever the route's media type (``openapi``). tests/test_contract.py fails
for an operation that documents no success body. They describe bodies the handlers already
build; they never reshape them:

- every model allows extra keys (``extra="allow"``), so a column or key a handler adds later
  still reaches the client instead of being dropped by ``response_model``;
- fields are required exactly when the handler always sends them (nullable ones say so), so
  validation adds no key the handler did not send;
- numbers that may be integers are ``Number`` (``int | float``): a plain ``float`` would turn
  a stored ``4`` into ``4.0``; times and dates the handlers already format stay strings.

Handlers that return a ``JSONResponse`` themselves (GeoJSON bodies, the alert and alarm lists,
keys, /healthz) are documented only: FastAPI sends such a response as it is, unvalidated, so
the hot paths cost nothing more.
"""
