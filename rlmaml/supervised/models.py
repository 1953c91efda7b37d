"""Models of the supervised experiments (Finn et al., 2017).

* ``SinusoidMLP``: 1 → 40 → 40 → 1 with ReLU. Its forward also accepts *task-batched*
  parameters (a leading task axis on every weight, inputs ``(T, n, 1)``) so a whole meta-batch
  runs as one batched matmul: h = x Wᵀ + b per task.
* ``Conv4``: four blocks [3×3 conv, 64 filters → BatchNorm (batch statistics) → ReLU], the
  2×2 down-sampling done by stride 2 (28 → 14 → 7 → 4 → 2), then a linear N-way head. With
  task-batched parameters (a leading task axis T on every conv and head weight, inputs
  ``(T, n, C, H, W)``) its forward runs the whole meta-batch at once (:func:`conv4_tasks_forward`).
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
        if self.head.weight.dim() == 3:  # task-batched parameters (through functional_call)
            return conv4_tasks_forward(self, x)
        return self.head(self.features(x).flatten(1))


def conv4_tasks_forward(model: Conv4, x: Tensor) -> Tensor:
    """Conv4 on T tasks at once: x (T, n, C, H, W) → logits (T, n, N).

    Activations are laid out (n, T·C, H, W), so that per block, for every task t,

        z_t = conv(h_t, W_t) + b_t                         one grouped convolution, groups = T
        ẑ_t = γ_t (z_t − μ_t) / √(σ²_t + ε) + β_t          μ_t, σ²_t: mean and biased variance of
                                                           channel c of task t over (n, H, W)
        h_t ← relu(ẑ_t)

    — batch norm with batch statistics per task and no running state (F.batch_norm in training
    mode over the T·C channels: each channel of each task is normalised by its own statistics,
    exactly what the per-task module computes). The head is one batched matmul
    logits_t = h_t W_tᵀ + b_t. BatchNorm weights may be shared by all tasks (shape (C,)) or per task
    ((T, C)); conv and head weights carry the task axis.
    """
    blocks = model.features
    tasks, n = x.shape[0], x.shape[1]
    h = x.transpose(0, 1).reshape(n, tasks * x.shape[2], *x.shape[3:])
    for i in range(0, len(blocks), 3):
        conv, norm = blocks[i], blocks[i + 1]
        w = conv.weight  # (T, C_out, C_in, 3, 3)
        h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), conv.bias.reshape(-1), conv.stride, conv.padding,
                     groups=tasks)
        channels = w.shape[1]
        gamma = norm.weight.expand(tasks, channels) if norm.weight.dim() == 1 else norm.weight
        beta = norm.bias.expand(tasks, channels) if norm.bias.dim() == 1 else norm.bias
        h = F.relu(F.batch_norm(h, None, None, gamma.reshape(-1), beta.reshape(-1), True, 0.0, norm.eps))
    h = h.reshape(n, tasks, -1).transpose(0, 1)  # (T, n, C·H·W), per task the order of flatten(1)
    return torch.baddbmm(model.head.bias.unsqueeze(1), h, model.head.weight.transpose(1, 2))
