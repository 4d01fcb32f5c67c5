"""Dual prevention and supervision: hidden dangers, inspection tasks, scores, watch list."""
