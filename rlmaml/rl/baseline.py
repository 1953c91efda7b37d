"""Linear feature baseline (Duan et al., 2016), fitted per task by ridge least squares, batched over tasks.

Features of an observation ``o`` at step ``t`` (``τ = t / 100``)::

    φ(o, t) = [clip(o, -10, 10), clip(o, -10, 10)², τ, τ², τ³, 1]

Per task ``i`` the weights solve ``(Φᵢᵀ Mᵢ Φᵢ + c I) wᵢ = Φᵢᵀ Mᵢ Rᵢ`` over the task's masked steps, starting
from ``c = reg_coeff`` and multiplying ``c`` by 10 (up to ``max_tries`` times) while the Cholesky factorisation
fails or the solution is not finite (as rllab's ``LinearFeatureBaseline``); if it never succeeds the weights
are zero. Everything is computed in float64.
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
        return LinearFeatureBaseline._task_major_features(observations).permute(1, 0, 2, 3)

    @staticmethod
    def _task_major_features(observations: torch.Tensor) -> torch.Tensor:
        """φ laid out task-major, ``[T, H, E, F]`` (one contiguous block per task)."""
        H, T, E, D = observations.shape
        phi = torch.empty(T, H, E, 2 * D + 4, dtype=torch.float64, device=observations.device)
        phi[..., :D] = observations.permute(1, 0, 2, 3)
        phi[..., :D].clamp_(-10.0, 10.0)
        torch.mul(phi[..., :D], phi[..., :D], out=phi[..., D:2 * D])
        tau = torch.arange(H, dtype=torch.float64, device=observations.device).div_(100.0).view(1, H, 1)
        phi[..., 2 * D] = tau
        phi[..., 2 * D + 1] = tau ** 2
        phi[..., 2 * D + 2] = tau ** 3
        phi[..., 2 * D + 3] = 1.0
        return phi

    @staticmethod
    def normal_equations(phi_w: torch.Tensor, y_w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ΦᵀMΦ ``[T, F, F]``, ΦᵀMR ``[T, F, 1]``) from mask-weighted features ``[T, M, F]`` and targets
        ``[T, M, 1]``: sums over steps, so the parts of a task add up to the task's (:mod:`rlmaml.rl.parts`)."""
        return phi_w.transpose(1, 2) @ phi_w, phi_w.transpose(1, 2) @ y_w

    def _solve(self, phi_w: torch.Tensor, y_w: torch.Tensor) -> torch.Tensor:
        """Ridge solution per task from mask-weighted features ``[T, M, F]`` and targets ``[T, M, 1]``."""
        return self.solve(*self.normal_equations(phi_w, y_w))

    def solve(self, gram: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
        """Ridge solution per task of ``(gram + c I) w = rhs`` (the module docstring's schedule of c)."""
        eye = torch.eye(gram.shape[-1], dtype=torch.float64, device=gram.device)
        reg = self.reg_coeff
        weights = None
        for _ in range(self.max_tries):
            # Φᵀ M Φ + c I is symmetric positive definite: Cholesky, batched over tasks (a batched LU solve
            # was seen to fail inside MKL for the ill-conditioned 226 × 226 systems of Ant)
            factor, info = torch.linalg.cholesky_ex(gram + reg * eye)
            weights = torch.cholesky_solve(rhs, factor).squeeze(-1) if not info.any() else None
            if weights is not None and torch.isfinite(weights).all():
                break
            reg *= 10.0
        if weights is None or not torch.isfinite(weights).all():
            weights = torch.zeros(gram.shape[0], gram.shape[-1], dtype=torch.float64, device=gram.device)
        self.weights = weights
        return weights

    def _weighted(self, observations, returns, mask):
        H, T, E, _ = observations.shape
        phi = self._task_major_features(observations)                               # [T, H, E, F]
        sqrt_m = mask.to(torch.float64).sqrt().permute(1, 0, 2).unsqueeze(-1)        # [T, H, E, 1]
        phi.mul_(sqrt_m)
        y = returns.to(torch.float64).permute(1, 0, 2).unsqueeze(-1) * sqrt_m
        return phi.view(T, H * E, -1), y.reshape(T, H * E, 1)

    def fit(self, observations: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fit one weight vector per task; returns ``weights [T, F]`` (also kept in ``self.weights``)."""
        phi_w, y_w = self._weighted(observations, returns, mask)
        return self._solve(phi_w, y_w)

    def predict(self, observations: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Baseline values ``φ(o, t)ᵀ w_task`` for every step: ``[H, T, E]``."""
        weights = self.weights if weights is None else weights
        if weights is None:
            raise RuntimeError("LinearFeatureBaseline.predict called before fit")
        H, T, E, _ = observations.shape
        phi = self._task_major_features(observations).view(T, H * E, -1)
        values = (phi @ weights.unsqueeze(-1)).view(T, H, E).permute(1, 0, 2)
        return values.to(observations.dtype if observations.is_floating_point() else torch.float32)

    def fit_predict(self, observations, returns, mask) -> torch.Tensor:
        """Fit, then the fitted values on the masked steps (0 on steps outside the mask): ``[H, T, E]``."""
        phi_w, y_w = self._weighted(observations, returns, mask)
        return self.fitted_values(phi_w, self._solve(phi_w, y_w), observations, mask)

    def fitted_values(self, phi_w: torch.Tensor, weights: torch.Tensor, observations, mask) -> torch.Tensor:
        """m · φᵀw on every step ``[H, T, E]`` from the mask-weighted features of :meth:`_weighted`."""
        H, T, E, _ = observations.shape
        values = (phi_w @ weights.unsqueeze(-1)).view(T, H, E).permute(1, 0, 2)    # = √m · φᵀw
        values = values * mask.to(torch.float64).sqrt()                            # = m · φᵀw
        return values.to(observations.dtype if observations.is_floating_point() else torch.float32)
