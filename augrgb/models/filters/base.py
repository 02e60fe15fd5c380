"""The temporal-filter registry and interface shared by every filter.

A temporal filter maps encoder features ``x (B, C_in, T)`` with a padding mask ``(B, 1, T)`` to
features ``H (B, hidden, T)``; it is built as ``TEMPORAL_FILTERS.build(name, in_dim, hidden=256,
dropout=..., **options)`` and exposes ``out_dim``. Outputs at padded positions are exactly 0 and
padded inputs never reach valid outputs (each filter zeroes its input and masks after every layer).
"""

from __future__ import annotations

from augrgb.core.registry import Registry

TEMPORAL_FILTERS: Registry = Registry("temporal filter")
