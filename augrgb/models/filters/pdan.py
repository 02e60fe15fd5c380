"""PDAN: Pyramid Dilated Attention Network (Dai et al., WACV 2021) as a temporal filter.

Like SS-TCN, but each layer's dilated convolution is a Dilated Attention Layer (DAL): at time t,
a per-channel query attends over the keys at t-d, t, t+d (softmax over the three positions);
the values are a separate 1x1 projection plus a learned relative-position embedding, as in
dairui01/PDAN ``PDAN.py`` (one earlier public version of that file used the keys as values). Dilations 1, 2, 4, ...
form the pyramid. Unlike the reference code (zero keys outside the video), positions outside the
video or in padding are excluded from the softmax, so padding cannot change valid outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augrgb.models.filters.base import TEMPORAL_FILTERS
from augrgb.models.masks import zero_padding


def _window(x: Tensor, dilation: int) -> Tensor:
    """``(B, C, T)`` -> ``(B, C, T, 3)``: the values at t - d, t, t + d (0 outside the sequence)."""
    t = x.shape[-1]
    padded = F.pad(x, (dilation, dilation))
    return torch.stack([padded[..., k * dilation:k * dilation + t] for k in range(3)], dim=-1)


class DilatedAttention(nn.Module):
    """DAL: per-channel local attention over a dilated window of 3 snippets."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.query = nn.Conv1d(channels, channels, 1, bias=False)
        self.key = nn.Conv1d(channels, channels, 1, bias=False)
        self.value = nn.Conv1d(channels, channels, 1, bias=False)
        self.relative_position = nn.Parameter(torch.randn(channels, 1, 3))
        for conv in (self.query, self.key, self.value):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out")

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        keys = _window(self.key(x), self.dilation)                       # (B, C, T, 3)
        allowed = _window(mask, self.dilation) > 0                         # (B, 1, T, 3)
        allowed[..., 1] = True                                             # the centre: never an empty softmax
        scores = (self.query(x).unsqueeze(-1) * keys).masked_fill(~allowed, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        values = _window(self.value(x), self.dilation) + self.relative_position
        return (weights * values).sum(-1)


class PDANBlock(nn.Module):
    """DAL -> ReLU -> 1x1 conv -> dropout -> residual, masked."""

    def __init__(self, dilation: int, channels: int, dropout: float) -> None:
        super().__init__()
        self.attention = DilatedAttention(channels, dilation)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        out = self.dropout(self.conv_1x1(F.relu(self.attention(x, mask))))
        return (x + out) * mask


@TEMPORAL_FILTERS.register("pdan")
class PDAN(nn.Module):
    """Bottleneck + ``layers`` PDAN blocks with dilations 1, 2, 4, ..."""

    def __init__(self, in_dim: int, hidden: int = 256, dropout: float = 0.5, *, layers: int = 5) -> None:
        super().__init__()
        self.out_dim = hidden
        self.bottleneck = nn.Conv1d(in_dim, hidden, 1)
        self.layers = nn.ModuleList(PDANBlock(2 ** i, hidden, dropout) for i in range(layers))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.bottleneck(zero_padding(x, mask)) * mask
        for layer in self.layers:
            h = layer(h, mask)
        return h
