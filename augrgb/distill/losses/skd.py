"""SKD: structured KD (Liu et al., CVPR 2019), pixels read as snippets.

Three terms, weights as in the authors' setting (pixel 10, pair 0.5, holistic 0.1):
- pixel-wise: KL between teacher and student class predictions per snippet (temperature 1);
- pair-wise: squared difference of the snippet-to-snippet cosine similarities of the features,
  mean over each video's valid pairs;
- holistic: adversarial. A Wasserstein critic scores a video's predicted class-probability
  sequence; the student term is ``-critic(student)``. The critic is trained separately on
  ``critic_loss`` (WGAN-GP: critic(student) - critic(teacher) + gradient penalty) with its own
  optimiser over ``critic_parameters()``; the main optimiser must leave those parameters alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augrgb.distill.losses.base import KD_LOSSES, KDContext, KDLoss, _clean
from augrgb.distill.losses.logit import masked_soft_kl
from augrgb.models.heads import probabilities
from augrgb.models.masks import video_mean
from augrgb.models.stream import StreamOutput


def cosine_similarities(features: Tensor) -> Tensor:
    """``(B, C, T)`` -> ``(B, T, T)`` cosine similarity between snippets."""
    h = F.normalize(features, dim=1)
    return h.transpose(1, 2) @ h


class SequenceCritic(nn.Module):
    """Masked 1D-conv critic: probability sequence ``(B, K', T)`` -> one score per video ``(B,)``."""

    def __init__(self, channels: int, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, width, 3, padding=1)
        self.conv2 = nn.Conv1d(width, width, 3, padding=2, dilation=2)
        self.score = nn.Linear(width, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = F.leaky_relu(self.conv1(x * mask), 0.2) * mask
        h = F.leaky_relu(self.conv2(h), 0.2) * mask
        pooled = h.sum(-1) / mask.sum(-1).clamp(min=1)
        return self.score(pooled)[:, 0]


@KD_LOSSES.register("skd")
class StructuredKD(KDLoss):
    """Pixel-wise + pair-wise + holistic (adversarial) structured distillation."""

    inputs = ("features", "logits")

    def __init__(self, ctx: KDContext, *, pixel_weight: float = 10.0, pair_weight: float = 0.5,
                 holistic_weight: float = 0.1, gradient_penalty: float = 10.0) -> None:
        super().__init__(ctx)
        self.pixel_weight, self.pair_weight = pixel_weight, pair_weight
        self.holistic_weight, self.gradient_penalty = holistic_weight, gradient_penalty
        self.critic = SequenceCritic(ctx.num_outputs)

    def compute(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor, labels: Tensor) -> Tensor:
        pixel = masked_soft_kl(student.logits, teacher.logits, mask, self.ctx.head, 1.0)
        diff = (cosine_similarities(student.features) - cosine_similarities(teacher.features)) ** 2
        pair = video_mean(diff, mask[:, 0, :, None] * mask[:, 0, None, :])
        loss = self.pixel_weight * pixel + self.pair_weight * pair
        if self.holistic_weight > 0:
            scores = self.critic(probabilities(student.logits, self.ctx.head), mask)
            has_video = (mask.sum((1, 2)) > 0).float()
            loss = loss - self.holistic_weight * (scores * has_video).sum() / has_video.sum().clamp(min=1)
        return loss

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.critic.parameters())

    def critic_loss(self, student: StreamOutput, teacher: StreamOutput, mask: Tensor) -> Tensor | None:
        """WGAN-GP critic loss on detached predictions: the critic learns to tell teacher from student."""
        mask = mask.float()
        with torch.autocast(device_type=mask.device.type, enabled=False):
            fake = probabilities(_clean(student.detach(), mask).logits, self.ctx.head) * mask
            real = probabilities(_clean(teacher.detach(), mask).logits, self.ctx.head) * mask
            has_video = (mask.sum((1, 2)) > 0).float()
            count = has_video.sum().clamp(min=1)
            wasserstein = ((self.critic(fake, mask) - self.critic(real, mask)) * has_video).sum() / count
            mix = torch.rand(fake.shape[0], 1, 1, device=fake.device)
            between = (mix * real + (1 - mix) * fake).requires_grad_(True)
            grad = torch.autograd.grad(self.critic(between, mask).sum(), between, create_graph=True)[0]
            penalty = (((grad.flatten(1).norm(dim=1) - 1) ** 2) * has_video).sum() / count
            return wasserstein + self.gradient_penalty * penalty
