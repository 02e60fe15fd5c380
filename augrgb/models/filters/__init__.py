"""Temporal filters (registry ``TEMPORAL_FILTERS``): SS-TCN (default), PDAN, TGM, one interface.

``forward(x (B, C_in, T), mask (B, 1, T) float) -> H (B, hidden, T)``, zero at padded positions.
"""

from augrgb.models.filters import pdan, ss_tcn, tgm  # noqa: F401  (register the filters)
from augrgb.models.filters.base import TEMPORAL_FILTERS

__all__ = ["TEMPORAL_FILTERS"]
