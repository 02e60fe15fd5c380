"""SS-TCN: the single stage of MS-TCN (Abu Farha & Gall, CVPR 2019), the paper's default temporal filter.

1x1 bottleneck C_in -> hidden, then dilated residual layers (dilation 2^(i-1), kernel 3):
dilated conv -> ReLU -> 1x1 conv -> dropout -> residual, masked after every layer.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from augrgb.models.filters.base import TEMPORAL_FILTERS
from augrgb.models.masks import zero_padding


class DilatedResidualLayer(nn.Module):
    """One MS-TCN layer: a dilated kernel-3 conv widens the receptive field, a residual keeps the input."""

    def __init__(self, dilation: int, channels: int, dropout: float) -> None:
        super().__init__()
        self.conv_dilated = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        out = self.dropout(self.conv_1x1(F.relu(self.conv_dilated(x))))
        return (x + out) * mask


@TEMPORAL_FILTERS.register("ss-tcn")
class SingleStageTCN(nn.Module):
    """Bottleneck + ``layers`` dilated residual layers (dilation 1, 2, 4, ...)."""

    def __init__(self, in_dim: int, hidden: int = 256, dropout: float = 0.5, *, layers: int = 5) -> None:
        super().__init__()
        self.out_dim = hidden
        self.bottleneck = nn.Conv1d(in_dim, hidden, 1)
        self.layers = nn.ModuleList(DilatedResidualLayer(2 ** i, hidden, dropout) for i in range(layers))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.bottleneck(zero_padding(x, mask)) * mask
        for layer in self.layers:
            h = layer(h, mask)
        return h
