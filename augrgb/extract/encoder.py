"""Fast batched inference of a snippet encoder (I3D) on CPU or GPU.

The speed comes from: BatchNorm folded into the preceding convolution, channels-last-3d
memory layout (the decoded uint8 (B, T, H, W, C) buffer already is that layout), several
snippets per forward pass, ``torch.inference_mode`` and optional bfloat16 autocast.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from augrgb.extract.i3d import InceptionI3d, Unit3D


def fold_batchnorm(model: InceptionI3d) -> InceptionI3d:
    """An inference copy of ``model`` with every BatchNorm folded into its convolution's weight and bias."""
    model = copy.deepcopy(model).eval()
    for unit in model.modules():
        if isinstance(unit, Unit3D) and unit.bn is not None:
            bn, conv = unit.bn, unit.conv3d
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            fused = nn.Conv3d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True)
            with torch.no_grad():
                fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1, 1))
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
            unit.conv3d, unit.bn = fused, None
    return model


class SnippetEncoder:
    """Encode batches of snippets (B, T, H, W, C), uint8 RGB or encoded flow, into (B, D) float32 features."""

    def __init__(self, model: InceptionI3d, precision: str = "fp32", device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.precision = precision
        self.model = fold_batchnorm(model).to(self.device).to(memory_format=torch.channels_last_3d)

    def to_input(self, snippets: np.ndarray) -> torch.Tensor:
        """(B, T, H, W, C) -> float (B, C, T, H, W) in [-1, 1], channels-last-3d, on the device.

        uint8 RGB is scaled by x / 127.5 - 1; float input (encoded flow) is taken as it is.
        """
        x = torch.from_numpy(np.ascontiguousarray(snippets)).to(self.device, non_blocking=True)
        x = x.permute(0, 4, 1, 2, 3)  # a channels-last-3d view of the same memory
        if x.dtype == torch.uint8:
            return x.float().mul_(1.0 / 127.5).sub_(1.0)
        return x.float()

    @torch.inference_mode()
    def features(self, snippets: np.ndarray) -> np.ndarray:
        """1024-d features of each snippet (the averaged, pooled ``Mixed_5c``)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self.model.extract_features(self.to_input(snippets))
        return out.float().cpu().numpy()

    @torch.inference_mode()
    def logits(self, snippets: np.ndarray) -> np.ndarray:
        """Class logits of each clip (for the Kinetics sanity check)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self.model(self.to_input(snippets))
        return out.float().cpu().numpy()
