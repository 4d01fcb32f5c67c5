"""Alerts after detection: the officer's lifecycle, feeds, statistics, CAP 1.2, webhooks."""
