"""Alert delivery: feeds, statistics, CAP 1.2 messages, webhooks."""
