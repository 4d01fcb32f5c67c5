"""Benchmarks, load and fault-injection scripts (nothing the product imports)."""
