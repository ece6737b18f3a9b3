"""Mixture density outputs for pen offsets (Graves 2013, eqs. 18-26), in pure torch.

A network emits ``1 + 6M`` numbers per step, laid out as

    [eos logit | M weight logits | M x (mu_x, mu_y) | M x (log sigma_x, log sigma_y) | M rho logits]

``split_params`` turns them into a ``Mixture``; ``log_likelihood`` scores a
target ``(dx, dy, pen_up)`` under it; ``sample`` draws one. Everything stays in
log space: with 20 sharp components the plain density underflows float32 long
before training is done, and the loss is only as good as its worst point.

The end-of-stroke logit is the logit of P(pen_up = 1); Graves writes
``e = 1 / (1 + exp(e_hat))``, which is the same model with the sign of the
logit flipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# 1 - rho^2 never goes below this: tanh saturates to exactly +-1 in float32 for
# logits past ~9, and the density (and its gradient) would be infinite there.
ONE_MINUS_RHO2_MIN = 1e-6
# Std devs never go below exp(-10) ~ 4.5e-5 (in units of the normalised offsets,
# whose std is 1): far below any real pen resolution, yet high enough that the
# squared z-scores of even absurd offsets stay finite in float32.
LOG_SIGMA_MIN = -10.0
_LOG_2PI = math.log(2 * math.pi)


def output_size(mixtures: int) -> int:
    """Numbers a network must emit per step for ``mixtures`` components."""
    return 1 + 6 * mixtures


@dataclass
class Mixture:
    """One mixture per leading index ``...``; M components in the last axis."""

    eos_logit: Tensor  # (...)          logit of P(pen_up = 1)
    log_weights: Tensor  # (..., M)     log-softmax of the weight logits
    mu: Tensor  # (..., M, 2)
    log_sigma: Tensor  # (..., M, 2)
    rho: Tensor  # (..., M)             correlation in (-1, 1)


def split_params(out: Tensor, bias: float = 0.0) -> Mixture:
    """Network outputs ``(..., 1 + 6M)`` -> ``Mixture``, sharpened by ``bias``.

    The bias is Graves' sampling bias (sec. 5.4): sigma = exp(s - b) and
    weights = softmax(w * (1 + b)), so b = 0 is the trained distribution and a
    larger b gives neater, less varied writing. Training uses b = 0.
    """
    m = (out.shape[-1] - 1) // 6
    if out.shape[-1] != output_size(m):
        raise ValueError(f"last axis has {out.shape[-1]} numbers, not 1 + 6M")
    eos, w, mu, s, r = out.split([1, m, 2 * m, 2 * m, m], dim=-1)
    lead = out.shape[:-1]
    return Mixture(
        eos_logit=eos.squeeze(-1),
        log_weights=torch.log_softmax(w * (1.0 + bias), dim=-1),
        mu=mu.reshape(*lead, m, 2),
        log_sigma=s.reshape(*lead, m, 2) - bias,
        rho=torch.tanh(r),
    )


def log_likelihood(mix: Mixture, target: Tensor) -> Tensor:
    """log [ sum_m pi_m N(dx, dy | mu_m, sigma_m, rho_m) * Bernoulli(pen_up | e) ], shape ``(...)``.

    The quadratic form is written as ``z1^2 + (z2 - rho z1)^2 / (1 - rho^2)``,
    which equals Graves' ``(z1^2 + z2^2 - 2 rho z1 z2) / (1 - rho^2)`` but is a
    sum of squares: it cannot cancel to a negative number when rho is near +-1.
    """
    log_sigma = mix.log_sigma.clamp(min=LOG_SIGMA_MIN)
    z = (target[..., None, :2] - mix.mu) * torch.exp(-log_sigma)  # (..., M, 2)
    z1, z2 = z.unbind(-1)
    one_minus = ((1 - mix.rho) * (1 + mix.rho)).clamp(min=ONE_MINUS_RHO2_MIN)
    quad = z1.square() + (z2 - mix.rho * z1).square() / one_minus
    log_normal = -_LOG_2PI - log_sigma.sum(-1) - 0.5 * torch.log(one_minus) - 0.5 * quad
    log_xy = torch.logsumexp(mix.log_weights + log_normal, dim=-1)
    eos, pen = torch.broadcast_tensors(mix.eos_logit, target[..., 2])
    log_pen = -F.binary_cross_entropy_with_logits(eos, pen, reduction="none")
    return log_xy + log_pen


def sequence_nll(mix: Mixture, target: Tensor, mask: Tensor) -> Tensor:
    """Minus the log-likelihood summed over each line's real points: ``(B, T)`` -> ``(B,)``.

    Padded points are selected away (not multiplied by zero), so whatever the
    mixture says about padding can never leak a NaN into the loss.
    """
    ll = log_likelihood(mix, target)
    return -torch.where(mask.bool(), ll, torch.zeros_like(ll)).sum(-1)


def sample(mix: Mixture, generator: torch.Generator | None = None) -> Tensor:
    """Draw one ``(dx, dy, pen_up)`` per mixture: ``(...)`` mixtures -> ``(..., 3)``.

    A component is picked by its weight, then a correlated pair is made from
    two standard normals (x = mu + sigma z, with z2 mixed by rho), and the pen
    lifts with probability sigmoid(eos logit). ``pen_up`` is exactly 0 or 1.
    """
    # Few, whole-tensor ops: sampling calls this once per point, and at that size an op
    # costs its overhead, not its maths. The component is a Gumbel-max draw
    # (argmax of log w - log(-log u)), then one gather picks its
    # (mu_x, mu_y, log sigma_x, log sigma_y, rho).
    lead = mix.log_weights.shape[:-1]
    u = torch.rand(mix.log_weights.shape, generator=generator, dtype=mix.mu.dtype, device=mix.mu.device)
    k = (mix.log_weights - u.log_().neg_().log_()).argmax(-1, keepdim=True)  # u = 0 gives -inf: never picked
    params = torch.cat([mix.mu, mix.log_sigma, mix.rho.unsqueeze(-1)], dim=-1)  # (..., M, 5)
    picked = params.gather(-2, k.unsqueeze(-1).expand(*lead, 1, 5)).squeeze(-2)
    mu, log_sigma, rho = picked.split([2, 2, 1], dim=-1)
    n = torch.randn(*lead, 2, generator=generator, dtype=mu.dtype, device=mu.device)
    n1, n2 = n.split(1, dim=-1)
    z = torch.cat([n1, torch.addcmul(rho * n1, (1 - rho.square()).clamp_(min=0).sqrt_(), n2)], dim=-1)
    pen = torch.bernoulli(torch.sigmoid(mix.eos_logit), generator=generator)
    return torch.cat([torch.addcmul(mu, log_sigma.exp(), z), pen.unsqueeze(-1)], dim=-1)


def draw_noise(lead: tuple[int, ...], mixtures: int, bias: float = 0.0, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The randomness of ``sample_outputs`` for draws of shape ``lead``, made ahead in two calls: ``(*lead, M + 3)``.

    Per draw: M Gumbel variables for the component (divided by ``1 + bias`` when
    that is positive, which leaves the argmax of ``w * (1 + bias) + g`` where it
    was), the logit of a uniform for the pen (``pen_up = 1`` iff the eos logit
    exceeds it, probability sigmoid(eos logit)) and two standard normals scaled
    by ``exp(-bias)`` (the bias on every sigma, Graves sec. 5.4).
    """
    u = torch.rand(*lead, mixtures + 1, generator=generator, dtype=dtype, device=device)
    n = torch.randn(*lead, 2, generator=generator, dtype=dtype, device=device)
    gumbel = u[..., :mixtures].log().neg_().log_().neg_()  # u = 0 gives -inf: never picked
    if 1.0 + bias > 0:
        gumbel = gumbel / (1.0 + bias)
    pen = u[..., mixtures:]
    return torch.cat([gumbel, pen.log() - torch.log1p(-pen), n * math.exp(-bias)], dim=-1)


_PICK: dict[tuple[int, str], Tensor] = {}


def _pick_table(m: int, device: torch.device) -> Tensor:
    """``(M, 5)``: where component k's (mu_x, mu_y, log sigma_x, log sigma_y, rho logit) sit in the raw outputs."""
    key = (m, str(device))
    if key not in _PICK:
        k = torch.arange(m)[:, None]
        base = torch.tensor([1 + m, 2 + m, 1 + 3 * m, 2 + 3 * m, 1 + 5 * m])
        stride = torch.tensor([2, 2, 2, 2, 1])
        _PICK[key] = (base + k * stride).to(device)
    return _PICK[key]


def sample_outputs(out: Tensor, noise: Tensor, bias: float = 0.0, into: Tensor | None = None) -> Tensor:
    """``sample(split_params(out, bias))`` straight from the raw outputs ``(B, 1 + 6M)``, with ``noise`` from ``draw_noise``.

    The same distribution in a dozen small ops rather than some forty: the
    component is the argmax of the raw weight logits (times ``1 + bias``) plus
    Gumbel noise, which is the argmax over the log-softmax too; one gather then
    picks its five raw numbers, and only those are transformed. ``into`` (``(B, 3)``,
    may be a view) receives the point and is returned; by default a new tensor.
    """
    m = (out.shape[-1] - 1) // 6
    w = out[:, 1 : 1 + m]
    if 1.0 + bias > 0:
        logits = torch.add(w, noise[:, :m])
    else:
        logits = torch.add(noise[:, :m], w, alpha=1.0 + bias)
    k = logits.argmax(-1)
    picked = out.gather(1, _pick_table(m, out.device).index_select(0, k))  # (B, 5)
    r = picked[:, 4:5]
    n = noise[:, m + 1 :]
    n1 = n[:, :1]
    # z2 = rho n1 + sqrt(1 - rho^2) n2 with rho = tanh(r), sqrt(1 - rho^2) = 1 / cosh(r)
    z = torch.cat([n1, torch.addcdiv(r.tanh().mul_(n1), n[:, 1:], r.cosh())], dim=1)
    if into is None:
        into = out.new_empty(out.shape[0], 3)
    torch.addcmul(picked[:, :2], picked[:, 2:4].exp(), z, out=into[:, :2])
    torch.sub(out[:, :1], noise[:, m : m + 1], out=into[:, 2:]).gt_(0)
    return into
