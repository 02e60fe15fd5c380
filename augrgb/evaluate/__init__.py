"""Scoring runs: ``cli`` (``augrgb evaluate ...``), ``benchmarks`` (prediction files against the official
protocols of :mod:`augrgb.metrics`) and ``checkpoints`` (stream checkpoints, alone or fused, on test videos).
"""
