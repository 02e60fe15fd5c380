"""TGM: Temporal Gaussian Mixture layers (Piergiovanni & Ryoo, ICML 2019) as a temporal filter.

A TGM layer's temporal kernels (length L) are soft-attention mixtures of M Gaussians whose centres
and widths are learned; the kernels are shared over the D feature dimensions and map c_in to
c_out "mixture channels" (for c_in > 1 a learned 1x1 combination + ReLU, as in the paper's
non-soft variant). The filter mirrors the paper's stacked model: 3 layers on the input features,
max over mixture channels, concatenated with the input, 1x1 conv to ``hidden`` + ReLU.
Kernels are Gaussians as in the paper (the authors' code uses a Cauchy profile).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augrgb.models.filters.base import TEMPORAL_FILTERS
from augrgb.models.masks import zero_padding


class TemporalGaussianMixture(nn.Module):
    """One TGM layer: ``(B, c_in, D, T)`` -> ``(B, c_out, D, T)``, masked in time."""

    def __init__(self, c_in: int, c_out: int, num_gaussians: int = 16, length: int = 5) -> None:
        super().__init__()
        if length % 2 != 1:
            raise ValueError(f"TGM kernel length must be odd so outputs stay centred, got {length}")
        self.c_in, self.c_out, self.length = c_in, c_out, length
        self.center = nn.Parameter(torch.randn(num_gaussians) * 0.5)
        self.width = nn.Parameter(torch.randn(num_gaussians) * 1e-4)
        self.mixture = nn.Parameter(torch.randn(c_out, c_in, num_gaussians) * 0.01)
        if c_in > 1:
            bound = 1.0 / math.sqrt(c_in)
            self.combine = nn.Parameter(torch.empty(c_out, c_in).uniform_(-bound, bound))
            self.bias = nn.Parameter(torch.empty(c_out).uniform_(-bound, bound))

    def gaussians(self) -> Tensor:
        """``(M, L)``: each Gaussian sampled at 0..L-1 and normalised to sum 1.

        Centre ``(L-1)(tanh(c)+1)/2`` in [0, L-1]; standard deviation ``exp(1 - 2|tanh(w)|)``.
        """
        steps = torch.arange(self.length, dtype=self.center.dtype, device=self.center.device)
        centers = (self.length - 1) * (torch.tanh(self.center) + 1) / 2
        sigmas = torch.exp(1.0 - 2.0 * torch.tanh(self.width).abs())
        kernel = torch.exp(-0.5 * ((steps[None, :] - centers[:, None]) / sigmas[:, None]) ** 2)
        return kernel / kernel.sum(dim=1, keepdim=True)

    def kernels(self) -> Tensor:
        """``(c_out, c_in, L)``: each kernel a softmax-weighted mixture of the Gaussians."""
        return torch.einsum("oim,ml->oil", torch.softmax(self.mixture, dim=-1), self.gaussians())

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, c_in, d, t = x.shape
        weight, bias = self.kernels(), None
        if self.c_in > 1:
            weight, bias = weight * self.combine[..., None], self.bias
        flat = x.permute(0, 2, 1, 3).reshape(b * d, c_in, t)
        out = F.conv1d(flat, weight, bias, padding=self.length // 2)
        out = out.reshape(b, d, self.c_out, t).permute(0, 2, 1, 3)
        if self.c_in > 1:
            out = F.relu(out)
        return out * mask.unsqueeze(2)


@TEMPORAL_FILTERS.register("tgm")
class TGMFilter(nn.Module):
    """Stacked TGM layers on the input features, fused with the input by a 1x1 conv to ``hidden``."""

    def __init__(self, in_dim: int, hidden: int = 256, dropout: float = 0.5, *, layers: int = 3,
                 channels: int = 8, num_gaussians: int = 16, length: int = 5) -> None:
        super().__init__()
        self.out_dim = hidden
        self.layers = nn.ModuleList(
            TemporalGaussianMixture(1 if i == 0 else channels, channels, num_gaussians, length) for i in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.fuse = nn.Conv1d(2 * in_dim, hidden, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = zero_padding(x, mask)
        sub_events = x.unsqueeze(1)
        for layer in self.layers:
            sub_events = layer(sub_events, mask)
        sub_events = sub_events.max(dim=1).values
        fused = F.relu(torch.cat([self.dropout(x), self.dropout(sub_events)], dim=1))
        return F.relu(self.fuse(fused)) * mask
