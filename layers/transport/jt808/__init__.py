"""JT/T 808 (2013 and 2019 editions) for the terminal gateway (``geo_api/jt808_gateway.py``).

``frame``: the byte stream → frames (delimiters, escaping, check code, header) and back;
``messages``: the bodies the gateway reads and writes; ``fixes``: decoded location reports as
the tanker ingest's rows; ``terminals``: registration and authentication against the database.
Only ``terminals`` does I/O.
"""
