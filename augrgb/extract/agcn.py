"""2s-AGCN (Shi et al., "Two-Stream Adaptive Graph Convolutional Networks for Skeleton-Based Action
Recognition", CVPR 2019) in plain PyTorch, as the pose encoder of stage 1.

Input is (N, C=3, T, V=25, M) joint coordinates; :meth:`AGCN.extract_features` gives one vector per
sample (256-d with the paper's widths) after global average pooling over time, joints and bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from augrgb.core.registry import Registry
from augrgb.extract.graph import spatial_partition
from augrgb.extract.skeleton_layout import NUM_JOINTS, parents

PAPER_WIDTHS: tuple[int, ...] = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)

POSE_ENCODERS: Registry[type[nn.Module]] = Registry("pose encoder")


def register_pose_encoder(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a pose encoder to :data:`POSE_ENCODERS` under ``name``, also its ``arch``
    attribute (checkpoints store it)."""
    def add(cls: type[nn.Module]) -> type[nn.Module]:
        cls.arch = name
        return POSE_ENCODERS.register(name)(cls)
    return add


class AdaptiveGraphConv(nn.Module):
    """Spatial graph convolution with adjacency A_k + B_k + C_k for each of the K partition subsets.

    A_k is the fixed normalised skeleton graph, B_k a learned (V, V) matrix initialised to zero, and
    C_k a per-sample graph: softmax over source joints of the embedded similarity theta(x)^T phi(x),
    scaled by the embedding size. A 1x1 convolution W_k maps each aggregated subset; their sum goes
    through BatchNorm, a residual connection and ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, adjacency: Tensor, embed_ratio: int = 4) -> None:
        super().__init__()
        subsets = adjacency.shape[0]
        embed = max(out_channels // embed_ratio, 1)
        self.register_buffer("A", adjacency.clone())
        self.B = nn.Parameter(torch.zeros_like(adjacency))
        self.theta = nn.ModuleList(nn.Conv2d(in_channels, embed, 1) for _ in range(subsets))
        self.phi = nn.ModuleList(nn.Conv2d(in_channels, embed, 1) for _ in range(subsets))
        self.W = nn.ModuleList(nn.Conv2d(in_channels, out_channels, 1) for _ in range(subsets))
        for conv in self.W:  # keep the sum over subsets at unit variance
            nn.init.kaiming_normal_(conv.weight, mode="fan_out")
            conv.weight.data /= subsets ** 0.5
        self.bn = nn.BatchNorm2d(out_channels)
        self.residual: nn.Module = nn.Identity() if in_channels == out_channels else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))

    def data_graph(self, x: Tensor, k: int) -> Tensor:
        """C_k: (N, V, V) similarity of every joint pair, normalised over source joints (rows)."""
        n, _, _, v = x.shape
        query = self.theta[k](x).permute(0, 3, 1, 2).reshape(n, v, -1)
        key = self.phi[k](x).reshape(n, -1, v)
        return torch.softmax(query @ key / query.shape[-1], dim=-2)

    def forward(self, x: Tensor) -> Tensor:
        out = 0
        for k, w in enumerate(self.W):
            graph = self.A[k] + self.B[k] + self.data_graph(x, k)
            out = out + w(torch.einsum("nctv,nvw->nctw", x, graph))
        return torch.relu(self.bn(out) + self.residual(x))


class TemporalConv(nn.Module):
    """Convolution over time only (kernel k x 1, 'same' padding, optional stride), then BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), stride=(stride, 1),
                              padding=((kernel_size - 1) // 2, 0))
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out")
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class TCNGCNUnit(nn.Module):
    """One AGCN block: adaptive graph conv, temporal conv 9x1, residual connection, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: Tensor, stride: int = 1,
                 residual: bool = True) -> None:
        super().__init__()
        self.gcn = AdaptiveGraphConv(in_channels, out_channels, adjacency)
        self.tcn = TemporalConv(out_channels, out_channels, 9, stride)
        if not residual:
            self.residual: nn.Module | None = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = TemporalConv(in_channels, out_channels, 1, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.tcn(self.gcn(x))
        return torch.relu(out if self.residual is None else out + self.residual(x))


@register_pose_encoder("agcn")
class AGCN(nn.Module):
    """Single-stream AGCN: data BatchNorm, 10 TCN-GCN units, global average pooling, linear classifier.

    ``widths`` are the units' channels (the paper's by default); the time stride is 2 at every unit whose
    width differs from the previous one (the first 128 and first 256 units). ``num_classes=None`` builds
    a feature extractor without classifier.
    """

    def __init__(self, num_classes: int | None, in_channels: int = 3, num_person: int = 2,
                 num_point: int = NUM_JOINTS, widths: Sequence[int] = PAPER_WIDTHS) -> None:
        super().__init__()
        if num_point != NUM_JOINTS:
            raise ValueError(f"AGCN uses the NTU {NUM_JOINTS}-joint graph, got num_point={num_point}")
        adjacency = torch.from_numpy(spatial_partition())
        self.in_channels, self.num_person, self.num_point = in_channels, num_person, num_point
        self.widths = tuple(int(w) for w in widths)
        self.num_classes = num_classes
        self.feature_dim = self.widths[-1]
        self.data_bn = nn.BatchNorm1d(num_person * num_point * in_channels)
        units, previous = [], in_channels
        for i, width in enumerate(self.widths):
            stride = 2 if i > 0 and width != self.widths[i - 1] else 1
            units.append(TCNGCNUnit(previous, width, adjacency, stride=stride, residual=i > 0))
            previous = width
        self.units = nn.Sequential(*units)
        self.fc = nn.Linear(self.feature_dim, num_classes) if num_classes else None

    def config(self) -> dict:
        """Constructor arguments (plain values), stored in checkpoints."""
        return {"num_classes": self.num_classes, "in_channels": self.in_channels, "num_person": self.num_person,
                "num_point": self.num_point, "widths": list(self.widths)}

    def extract_features(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N, feature_dim); fewer bodies than ``num_person`` are padded with absent ones."""
        n, c, t, v, m = x.shape
        if m > self.num_person:
            raise ValueError(f"input has {m} bodies, the model takes at most {self.num_person}")
        if m < self.num_person:
            x = torch.cat([x, x.new_zeros(n, c, t, v, self.num_person - m)], dim=-1)
            m = self.num_person
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t))
        x = x.reshape(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        x = self.units(x)
        return x.reshape(n, m, x.shape[1], -1).mean(dim=(1, 3))

    def forward(self, x: Tensor) -> Tensor:
        if self.fc is None:
            raise RuntimeError("this AGCN was built without a classifier (num_classes=None)")
        return self.fc(self.extract_features(x))


def bone_input(joints: Tensor) -> Tensor:
    """Bone vectors (N, C, T, V, M): each joint minus its parent in the NTU bone tree; the root's bone is zero."""
    return joints - joints[:, :, :, torch.from_numpy(parents()).to(joints.device)]


@register_pose_encoder("2s-agcn")
class TwoStreamAGCN(nn.Module):
    """Joint and bone AGCN streams fused at the feature level: feature = mean of the two 256-d features.

    Averaging (rather than concatenating) keeps the stage-1 pose feature 256-d; one linear classifier
    reads the fused feature, so the feature stored for distillation is exactly what was trained.
    Takes joint coordinates; the bone input is computed inside.
    """

    def __init__(self, num_classes: int | None, in_channels: int = 3, num_person: int = 2,
                 num_point: int = NUM_JOINTS, widths: Sequence[int] = PAPER_WIDTHS) -> None:
        super().__init__()
        self.joint = AGCN(None, in_channels, num_person, num_point, widths)
        self.bone = AGCN(None, in_channels, num_person, num_point, widths)
        self.num_person, self.num_classes, self.feature_dim = num_person, num_classes, self.joint.feature_dim
        self.fc = nn.Linear(self.feature_dim, num_classes) if num_classes else None

    def config(self) -> dict:
        return {**self.joint.config(), "num_classes": self.num_classes}

    def extract_features(self, x: Tensor) -> Tensor:
        return (self.joint.extract_features(x) + self.bone.extract_features(bone_input(x))) / 2

    def forward(self, x: Tensor) -> Tensor:
        if self.fc is None:
            raise RuntimeError("this TwoStreamAGCN was built without a classifier (num_classes=None)")
        return self.fc(self.extract_features(x))
