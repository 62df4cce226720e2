"""A Gaussian mixture with its exact denoiser: the ground truth samplers are checked against.

For data p(x0) = sum_k w_k N(mu_k, s_k^2 I) and x = x0 + sigma * eps,
p(x) = sum_k w_k N(mu_k, (s_k^2 + sigma^2) I), and

    E[x0 | x] = sum_k r_k(x) (mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k))

with r_k(x) the posterior responsibility of component k.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .denoisers import Cond


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    weights: torch.Tensor  # [K], sums to 1
    means: torch.Tensor  # [K, D]
    stds: torch.Tensor  # [K], isotropic

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond = None) -> torch.Tensor:
        """The exact E[x0 | x] for x of shape [B, D] (or [B, ...] flattening to D)."""
        flat = x.flatten(1).double()
        var = self.stds.double() ** 2  # [K]
        total = var[None, :] + sigma.double()[:, None] ** 2  # [B, K]
        d2 = torch.cdist(flat, self.means.double()) ** 2  # [B, K]
        log_r = self.weights.double().log()[None] - d2 / (2 * total) - 0.5 * self.dim * total.log()
        r = torch.softmax(log_r, dim=1)  # [B, K]
        shrink = var[None, :] / total  # [B, K]
        # sum_k r_k (mu_k + shrink_k (x - mu_k)) = sum_k r_k (1 - shrink_k) mu_k + (sum_k r_k shrink_k) x
        x0 = (r * (1 - shrink)) @ self.means.double() + (r * shrink).sum(1, keepdim=True) * flat
        return x0.to(x.dtype).view_as(x)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """n draws from the data distribution and their component indices."""
        k = torch.multinomial(self.weights.double(), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.means.double()[k] + self.stds.double()[k, None] * noise, k

    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """The most likely component of each clean sample."""
        var = self.stds.double() ** 2
        d2 = torch.cdist(x.flatten(1).double(), self.means.double()) ** 2
        log_p = self.weights.double().log()[None] - d2 / (2 * var) - 0.5 * self.dim * var.log()
        return log_p.argmax(1)


def reference_mixture() -> GaussianMixture:
    """The 2-D, three-component mixture used by the sampler tests and benchmark."""
    return GaussianMixture(
        weights=torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64),
        means=torch.tensor([[-2.0, 0.0], [1.5, 1.5], [1.0, -2.0]], dtype=torch.float64),
        stds=torch.tensor([0.4, 0.6, 0.3], dtype=torch.float64),
    )


def mixture_moments(gm: GaussianMixture) -> tuple[torch.Tensor, torch.Tensor]:
    """The data distribution's exact mean and covariance."""
    w, mu, s = gm.weights.double(), gm.means.double(), gm.stds.double()
    mean = w @ mu
    centred = mu - mean
    cov = (w[:, None, None] * (centred[:, :, None] * centred[:, None, :])).sum(0)
    cov += torch.eye(gm.dim, dtype=torch.float64) * (w * s**2).sum()
    return mean, cov


@dataclass(frozen=True)
class SamplerError:
    sampler: str
    steps: int
    evaluations: int
    mean_error: float  # |mean - true mean|
    cov_error: float  # max |cov - true cov|
    weight_error: float  # max |fraction in component k - w_k|


def sampler_error(name: str, steps: int, n: int = 20000, seed: int = 0, gm: GaussianMixture | None = None,
                  sigma_max: float = 80.0, sigma_min: float = 0.002) -> SamplerError:
    """Sample ``n`` points with sampler ``name`` over Karras sigmas and measure how far off they are."""
    from .samplers import get_sampler
    from .schedules import karras_sigmas

    gm = gm or reference_mixture()
    spec = get_sampler(name)
    calls = 0

    def counted(x, sigma, cond):
        nonlocal calls
        calls += 1
        return gm.denoise(x, sigma, cond)

    g = torch.Generator().manual_seed(seed)
    sigmas = karras_sigmas(steps, sigma_min, sigma_max).double()
    x = torch.randn(n, gm.dim, generator=g, dtype=torch.float64) * sigmas[0]
    out = spec.fn(counted, x, sigmas, cond=None, generator=g)
    mean, cov = mixture_moments(gm)
    fractions = torch.bincount(gm.assign(out), minlength=len(gm.weights)).double() / n
    return SamplerError(
        spec.name, steps, calls,
        float((out.mean(0) - mean).norm()),
        float((torch.cov(out.T) - cov).abs().max()),
        float((fractions - gm.weights).abs().max()),
    )
