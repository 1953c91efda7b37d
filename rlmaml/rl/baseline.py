"""Linear feature baseline (Duan et al., 2016), fitted per task by ridge least squares, batched over tasks.

Features of an observation ``o`` at step ``t`` (``τ = t / 100``)::

    φ(o, t) = [clip(o, -10, 10), clip(o, -10, 10)², τ, τ², τ³, 1]

Per task ``i`` the weights solve ``(Φᵢᵀ Mᵢ Φᵢ + c I) wᵢ = Φᵢᵀ Mᵢ Rᵢ`` over the task's masked steps, starting
from ``c = reg_coeff`` and multiplying ``c`` by 10 (up to ``max_tries`` times) while the solution is not finite.
"""

from __future__ import annotations

import torch


class LinearFeatureBaseline:
    """``fit(observations, returns, mask)`` then ``predict(observations)``; tensors are ``[H, T, E, ...]``."""

    def __init__(self, reg_coeff: float = 1e-5, max_tries: int = 5) -> None:
        self.reg_coeff = float(reg_coeff)
        self.max_tries = int(max_tries)
        self.weights: torch.Tensor | None = None  # [T, F]

    @staticmethod
    def features(observations: torch.Tensor) -> torch.Tensor:
        """``[H, T, E, obs] -> [H, T, E, 2·obs + 4]`` in float64."""
        obs = observations.to(torch.float64).clamp(-10.0, 10.0)
        horizon = obs.shape[0]
        tau = (torch.arange(horizon, dtype=torch.float64, device=obs.device) / 100.0)
        tau = tau.view(horizon, *([1] * (obs.dim() - 1))).expand(*obs.shape[:-1], 1)
        return torch.cat([obs, obs ** 2, tau, tau ** 2, tau ** 3, torch.ones_like(tau)], dim=-1)

    def fit(self, observations: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        phi = self.features(observations)                           # [H, T, E, F]
        m = mask.to(torch.float64).unsqueeze(-1)
        phi_t = phi.permute(1, 0, 2, 3).reshape(phi.shape[1], -1, phi.shape[-1])   # [T, H·E, F]
        m_t = m.permute(1, 0, 2, 3).reshape(phi.shape[1], -1, 1)
        y_t = returns.to(torch.float64).permute(1, 0, 2).reshape(phi.shape[1], -1, 1)
        gram = phi_t.transpose(1, 2) @ (phi_t * m_t)                # [T, F, F]
        rhs = phi_t.transpose(1, 2) @ (y_t * m_t)                   # [T, F, 1]
        eye = torch.eye(gram.shape[-1], dtype=torch.float64, device=gram.device)
        reg = self.reg_coeff
        weights = None
        for _ in range(self.max_tries):
            try:
                weights = torch.linalg.solve(gram + reg * eye, rhs).squeeze(-1)
            except RuntimeError:  # singular even with regularisation
                weights = None
            if weights is not None and torch.isfinite(weights).all():
                break
            reg *= 10.0
        if weights is None or not torch.isfinite(weights).all():
            weights = torch.zeros(gram.shape[0], gram.shape[-1], dtype=torch.float64, device=gram.device)
        self.weights = weights
        return weights

    def predict(self, observations: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        weights = self.weights if weights is None else weights
        if weights is None:
            raise RuntimeError("LinearFeatureBaseline.predict called before fit")
        phi = self.features(observations)                           # [H, T, E, F]
        values = torch.einsum("htef,tf->hte", phi, weights)
        return values.to(observations.dtype if observations.is_floating_point() else torch.float32)

    def fit_predict(self, observations, returns, mask) -> torch.Tensor:
        self.fit(observations, returns, mask)
        return self.predict(observations)
