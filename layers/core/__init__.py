"""Plumbing every room shares: colours, vocabularies, schema, change notices, partitions, COPY,
batch bodies and the batch ingest pipeline (``ingest``)."""
