"""Returns and advantages on time-major batches ``[H, ...]`` with a validity mask.

``mask[t] = 1`` for steps up to and including the terminating step and 0 afterwards; rewards, values and
outputs are multiplied by the mask, so steps after termination contribute nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """Reward-to-go ``R_t = m_t (r_t + γ R_{t+1})`` with ``R_H = 0``; same shape as ``rewards``."""
    rewards = rewards * mask
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = (rewards[t] + gamma * running) * mask[t]
        returns[t] = running
    return returns


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimation (Schulman et al., 2016).

    ``δ_t = m_t r_t + γ m_{t+1} V_{t+1} - m_t V_t`` (``V_H = 0``: the horizon cuts the episode) and
    ``A_t = m_t (δ_t + γ λ A_{t+1})``.
    """
    rewards = rewards * mask
    values = values * mask
    next_values = torch.cat([values[1:], torch.zeros_like(values[:1])], dim=0)
    deltas = rewards + gamma * next_values - values
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = (deltas[t] + gamma * lam * running) * mask[t]
        advantages[t] = running
    return advantages


def normalize(x: torch.Tensor, mask: torch.Tensor, dims: int | Sequence[int], eps: float = 1e-8) -> torch.Tensor:
    """``(x - μ) / (σ + eps) · mask`` with mean and (population) std over the masked entries along ``dims``."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    count = mask.sum(dim=dims, keepdim=True).clamp_min(1.0)
    mean = (x * mask).sum(dim=dims, keepdim=True) / count
    var = (((x - mean) * mask) ** 2).sum(dim=dims, keepdim=True) / count
    return (x - mean) / (var.sqrt() + eps) * mask
