"""Few-shot task distributions: sinusoid regression and Omniglot N-way K-shot classification.

A task batch is a :data:`SupportQueryBatch`, four tensors with a leading task dimension,
``(x_support, y_support, x_query, y_query)``, on the requested device. Sampling draws
from a ``numpy.random.Generator`` so that a run's task stream is checkpointed and resumed
exactly.

Sinusoid (Finn et al., 2017): y = A sin(x − φ), A ~ U[0.1, 5], φ ~ U[0, π], x ~ U[−5, 5].

Omniglot: a task picks N classes without replacement and, per class, K support and Q query
drawings (of 20) without replacement; labels 0..N−1 in random order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

SupportQueryBatch = tuple[Tensor, Tensor, Tensor, Tensor]
"""(x_S, y_S, x_Q, y_Q) of B tasks: support set S_i (adapted on) and query set Q_i (scored on), task axis first."""


@dataclass
class SinusoidTasks:
    """y = A sin(x − φ) with A ~ U[amplitude], φ ~ U[phase], x ~ U[inputs]."""

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, float(np.pi))
    inputs: tuple[float, float] = (-5.0, 5.0)

    def sample_parameters(self, rng: np.random.Generator, num_tasks: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.uniform(*self.amplitude, num_tasks), rng.uniform(*self.phase, num_tasks)

    def points(self, rng: np.random.Generator, amplitude: np.ndarray, phase: np.ndarray,
               num_points: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.uniform(*self.inputs, (len(amplitude), num_points, 1))
        return x, amplitude[:, None, None] * np.sin(x - phase[:, None, None])

    def sample(self, rng: np.random.Generator, num_tasks: int, num_support: int, num_query: int,
               device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> SupportQueryBatch:
        amplitude, phase = self.sample_parameters(rng, num_tasks)
        xs, ys = self.points(rng, amplitude, phase, num_support)
        xq, yq = self.points(rng, amplitude, phase, num_query)
        return tuple(torch.as_tensor(a, dtype=dtype, device=device) for a in (xs, ys, xq, yq))


class OmniglotTasks:
    """N-way K-shot tasks over the characters ``classes`` of ``images`` (uint8 (C, 20, 28, 28)).

    With ``rotations`` every character also appears rotated by 90°, 180° and 270° as its own
    class (4 classes per character).
    """

    def __init__(self, images: np.ndarray, characters: np.ndarray, rotations: bool,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        self.images = torch.as_tensor(images[characters], device=device).to(dtype) / 255.0
        self.num_characters = len(characters)
        self.rotations = 4 if rotations else 1
        self.num_classes = self.num_characters * self.rotations
        self.device = device

    def sample(self, rng: np.random.Generator, num_tasks: int, num_ways: int, num_shots: int,
               num_query: int) -> SupportQueryBatch:
        if num_ways > self.num_classes:
            raise ValueError(f"{num_ways}-way tasks need {num_ways} classes, only {self.num_classes} available")
        per_class = num_shots + num_query
        classes = np.stack([rng.choice(self.num_classes, num_ways, replace=False) for _ in range(num_tasks)])
        drawers = np.stack([[rng.choice(20, per_class, replace=False) for _ in range(num_ways)]
                            for _ in range(num_tasks)])  # (T, N, K+Q)
        characters = torch.as_tensor(classes // self.rotations, device=self.device)
        turns = classes % self.rotations
        images = self.images[characters[:, :, None], torch.as_tensor(drawers, device=self.device)]  # (T,N,K+Q,28,28)
        if self.rotations > 1:
            for k in (1, 2, 3):
                mask = torch.as_tensor(turns == k, device=self.device)
                if mask.any():
                    images[mask] = torch.rot90(images[mask], k, dims=(-2, -1))
        images = images.unsqueeze(-3)  # channel axis
        labels = torch.arange(num_ways, device=self.device).view(1, num_ways, 1).expand(num_tasks, num_ways, per_class)
        xs = images[:, :, :num_shots].reshape(num_tasks, num_ways * num_shots, 1, 28, 28)
        xq = images[:, :, num_shots:].reshape(num_tasks, num_ways * num_query, 1, 28, 28)
        ys = labels[:, :, :num_shots].reshape(num_tasks, -1)
        yq = labels[:, :, num_shots:].reshape(num_tasks, -1)
        return xs, ys, xq, yq
