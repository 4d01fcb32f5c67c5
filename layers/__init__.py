"""The domain: one module per layer or engine. Never imports FastAPI."""
