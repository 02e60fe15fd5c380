"""Reproducible results grids: many seeded teacher/student runs on one feature store, and their tables."""
