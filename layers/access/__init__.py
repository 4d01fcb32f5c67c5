"""Who may see and do what: roles and views, API keys, the audit log."""
