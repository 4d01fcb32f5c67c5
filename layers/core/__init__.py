"""Plumbing every room shares: colours, vocabularies, schema, change notices, partitions, COPY."""
