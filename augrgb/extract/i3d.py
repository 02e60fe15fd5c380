"""InceptionV1-I3D (Carreira & Zisserman, CVPR 2017) in plain PyTorch.

Mirrors DeepMind's Sonnet network: TensorFlow "SAME" padding, BatchNorm eps 1e-3, no bias in
the convolutions but the logits. State-dict keys match the widely used pytorch-i3d checkpoints
(``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_3b.b1b.bn.running_mean``, ``logits.conv3d.weight``...),
so ``rgb_imagenet.pt``/``flow_imagenet.pt`` load directly. The feature of a clip is the
average-pooled ``Mixed_5c`` output, 1024-d.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIM = 1024


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding (before, after) for one dimension: the extra pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        pads.extend(same_padding(size, k, s))
    return F.pad(x, pads) if any(pads) else x


class Unit3D(nn.Module):
    """Conv3d with SAME padding, then BatchNorm (eps 1e-3) and ReLU: Sonnet's ``Unit3D``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1), batch_norm: bool = True, activation: bool = True,
                 bias: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        # With stride 1 and odd kernels SAME padding is symmetric: let the convolution do it (no copy).
        self.symmetric = all(s == 1 and k % 2 == 1 for k, s in zip(kernel, stride))
        padding = tuple(k // 2 for k in kernel) if self.symmetric else 0
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=padding, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm else None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.symmetric:
            x = _pad_same(x, self.kernel, self.stride)
        x = self.conv3d(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.activation else x


class MaxPool3dSame(nn.Module):
    """Max pooling with TensorFlow SAME padding; zero padding equals TF's because inputs are post-ReLU."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = list(zip(x.shape[2:], self.kernel, self.stride))
        pads = [same_padding(size, k, s) for size, k, s in dims]
        # Padding only after, as much as ceil_mode's last partial window covers: pool without a padded copy.
        if all(before == 0 and math.ceil((size - k) / s) + 1 == math.ceil(size / s)
               for (before, _), (size, k, s) in zip(pads, dims)):
            return F.max_pool3d(x, self.kernel, self.stride, ceil_mode=True)
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches: 1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3 max-pool -> 1x1; concatenated on channels."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, widths[0])
        self.b1a = Unit3D(in_channels, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, widths[5])
        self.out_channels = widths[0] + widths[2] + widths[4] + widths[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (name, input channels, branch widths) of the Inception modules, as in the I3D paper's Fig. 3.
_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


class InceptionI3d(nn.Module):
    """I3D for clips (N, C, T, H, W) in [-1, 1]; C = 3 for RGB, 2 for flow (x, y)."""

    def __init__(self, num_classes: int = 400, in_channels: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionModule(*_MIXED["Mixed_3b"])
        self.Mixed_3c = InceptionModule(*_MIXED["Mixed_3c"])
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionModule(*_MIXED["Mixed_4b"])
        self.Mixed_4c = InceptionModule(*_MIXED["Mixed_4c"])
        self.Mixed_4d = InceptionModule(*_MIXED["Mixed_4d"])
        self.Mixed_4e = InceptionModule(*_MIXED["Mixed_4e"])
        self.Mixed_4f = InceptionModule(*_MIXED["Mixed_4f"])
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionModule(*_MIXED["Mixed_5b"])
        self.Mixed_5c = InceptionModule(*_MIXED["Mixed_5c"])
        self.logits = Unit3D(FEATURE_DIM, num_classes, batch_norm=False, activation=False, bias=True)
        self._trunk = [
            self.Conv3d_1a_7x7, self.MaxPool3d_2a_3x3, self.Conv3d_2b_1x1, self.Conv3d_2c_3x3,
            self.MaxPool3d_3a_3x3, self.Mixed_3b, self.Mixed_3c, self.MaxPool3d_4a_3x3, self.Mixed_4b,
            self.Mixed_4c, self.Mixed_4d, self.Mixed_4e, self.Mixed_4f, self.MaxPool3d_5a_2x2,
            self.Mixed_5b, self.Mixed_5c,
        ]

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``Mixed_5c`` after the (2, 7, 7) VALID average pool: (N, 1024, T/8 - 1, 1, 1) for 224x224 input."""
        for layer in self._trunk:
            x = layer(x)
        # (2, 7, 7) as in the original; clamped for inputs smaller than 224x224 or 16 frames.
        kernel = tuple(min(k, s) for k, s in zip((2, 7, 7), x.shape[2:]))
        # Pool in float32: CPU avg_pool3d has no bfloat16 kernel, and the tensor is small here.
        return F.avg_pool3d(x.float(), kernel_size=kernel, stride=1).to(x.dtype)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """One 1024-d vector per clip: the pooled feature map averaged over its remaining time steps."""
        return self.feature_map(x).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits per clip (N, num_classes), averaged over time as in the original network."""
        return self.logits(self.feature_map(x)).mean(dim=(2, 3, 4))
