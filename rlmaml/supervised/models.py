"""Models of the supervised experiments (Finn et al., 2017).

* ``SinusoidMLP``: 1 → 40 → 40 → 1 with ReLU. Its forward also accepts *task-batched*
  parameters (a leading task axis on every weight, inputs ``(T, n, 1)``) so a whole meta-batch
  runs as one batched matmul: h = x Wᵀ + b per task.
* ``Conv4``: four blocks [3×3 conv, 64 filters → BatchNorm (batch statistics) → ReLU], the
  2×2 down-sampling done by stride 2 (28 → 14 → 7 → 4 → 2), then a linear N-way head.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class SinusoidMLP(nn.Module):
    """f(x) = W₃ relu(W₂ relu(W₁ x + b₁) + b₂) + b₃; weights may carry a leading task axis."""

    def __init__(self, hidden_sizes: Sequence[int] = (40, 40), in_dim: int = 1, out_dim: int = 1):
        super().__init__()
        sizes = [in_dim, *hidden_sizes, out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            # (W xᵀ)ᵀ rather than x Wᵀ: ∇W = δᵀx comes out contiguous, which keeps the
            # elementwise inner update θ − α∇θ on task-batched weights on the fast path
            x = torch.matmul(layer.weight, x.transpose(-1, -2)).transpose(-1, -2) + layer.bias.unsqueeze(-2)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class Conv4(nn.Module):
    """Four conv blocks (3×3, stride 2, BatchNorm with batch statistics, ReLU) and a linear head."""

    def __init__(self, num_classes: int, num_filters: int = 64, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        blocks, channels, size = [], in_channels, image_size
        for _ in range(4):
            blocks += [nn.Conv2d(channels, num_filters, 3, stride=2, padding=1),
                       nn.BatchNorm2d(num_filters, track_running_stats=False), nn.ReLU()]
            channels, size = num_filters, (size + 1) // 2
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(num_filters * size * size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))
