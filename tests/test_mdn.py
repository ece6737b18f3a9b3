import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from hwkit import mdn

SETTINGS = settings(max_examples=40, deadline=None)


def raw_output(weights, mu, log_sigma, rho_logit, eos_logit, dtype=torch.float64):
    """Pack per-component parameters into the network output layout."""
    m = len(weights)
    out = np.concatenate(
        [[eos_logit], weights, np.asarray(mu).reshape(2 * m), np.asarray(log_sigma).reshape(2 * m), rho_logit]
    )
    return torch.tensor(out, dtype=dtype)


@st.composite
def mixtures(draw, max_m=4):
    m = draw(st.integers(1, max_m))
    floats = lambda lo, hi, n: draw(st.lists(st.floats(lo, hi), min_size=n, max_size=n))  # noqa: E731
    return dict(
        weights=floats(-3, 3, m),
        mu=np.reshape(floats(-3, 3, 2 * m), (m, 2)),
        log_sigma=np.reshape(floats(-2, 1.5, 2 * m), (m, 2)),
        rho_logit=floats(-2.5, 2.5, m),  # |rho| up to ~0.99
        eos_logit=draw(st.floats(-5, 5)),
    )


def direct_log_likelihood(p, target):
    """Graves eqs. 23-25 written out with numpy, component by component."""
    w = np.exp(p["weights"] - logsumexp(p["weights"]))
    x1, x2, pen = target
    density = 0.0
    for k in range(len(w)):
        s1, s2 = np.exp(p["log_sigma"][k])
        rho = np.tanh(p["rho_logit"][k])
        z1 = (x1 - p["mu"][k][0]) / s1
        z2 = (x2 - p["mu"][k][1]) / s2
        zz = z1**2 + z2**2 - 2 * rho * z1 * z2
        density += w[k] / (2 * np.pi * s1 * s2 * np.sqrt(1 - rho**2)) * np.exp(-zz / (2 * (1 - rho**2)))
    e = 1 / (1 + np.exp(-p["eos_logit"]))
    with np.errstate(divide="ignore"):  # log(0) = -inf where the density underflows: callers skip those
        return np.log(density) + np.log(e if pen else 1 - e)


def scipy_log_likelihood(p, target):
    w = p["weights"] - logsumexp(p["weights"])
    terms = []
    for k in range(len(w)):
        s1, s2 = np.exp(p["log_sigma"][k])
        rho = np.tanh(p["rho_logit"][k])
        cov = [[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]]
        terms.append(w[k] + multivariate_normal.logpdf(target[:2], mean=p["mu"][k], cov=cov))
    log_e = -np.logaddexp(0, -p["eos_logit"]) if target[2] else -np.logaddexp(0, p["eos_logit"])
    return logsumexp(terms) + log_e


@SETTINGS
@given(p=mixtures(), x=st.floats(-4, 4), y=st.floats(-4, 4), pen=st.sampled_from([0.0, 1.0]))
def test_log_likelihood_matches_direct_formula_and_scipy(p, x, y, pen):
    mix = mdn.split_params(raw_output(**p))
    got = mdn.log_likelihood(mix, torch.tensor([x, y, pen], dtype=torch.float64)).item()
    want_scipy = scipy_log_likelihood(p, (x, y, pen))
    assert got == pytest.approx(want_scipy, rel=1e-6, abs=1e-6)
    want_direct = direct_log_likelihood(p, (x, y, pen))
    if np.isfinite(want_direct):  # the naive formula underflows where the log-space one does not
        assert got == pytest.approx(want_direct, rel=1e-6, abs=1e-6)


def test_log_likelihood_is_finite_where_the_plain_density_underflows():
    p = dict(weights=[0.0], mu=[[0.0, 0.0]], log_sigma=[[-3.0, -3.0]], rho_logit=[0.0], eos_logit=0.0)
    target = (3.0, 0.0, 1.0)  # 60 std devs away: exp(-1800) is 0 in float64
    assert np.isneginf(direct_log_likelihood(p, target))
    got = mdn.log_likelihood(mdn.split_params(raw_output(**p, dtype=torch.float32)), torch.tensor(target))
    assert got.item() == pytest.approx(scipy_log_likelihood(p, target), rel=1e-5)


@settings(max_examples=8, deadline=None)
@given(
    mu=st.tuples(st.floats(-1, 1), st.floats(-1, 1)),
    log_sigma=st.tuples(st.floats(-0.7, 0.3), st.floats(-0.7, 0.3)),
    rho_logit=st.floats(-1.5, 1.5),
    eos_logit=st.floats(-3, 3),
)
def test_single_component_integrates_to_one(mu, log_sigma, rho_logit, eos_logit):
    out = raw_output([0.0], [mu], [log_sigma], [rho_logit], eos_logit)
    mix = mdn.split_params(out)
    step = 0.04
    axis = torch.arange(-8, 8, step, dtype=torch.float64)
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    total = 0.0
    for pen in (0.0, 1.0):  # the Bernoulli term must sum to one over the pen too
        target = torch.stack([gx, gy, torch.full_like(gx, pen)], dim=-1)
        total += mdn.log_likelihood(mix, target).exp().sum().item() * step * step
    assert total == pytest.approx(1.0, abs=1e-3)


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(1, 5),
    scale=st.sampled_from([1e2, 1e3, 1e4]),
    offset=st.sampled_from([0.0, 1e3, 1e6]),
    seed=st.integers(0, 2**16),
)
def test_loss_and_gradients_stay_finite_for_extreme_inputs(m, scale, offset, seed):
    g = torch.Generator().manual_seed(seed)
    out = (torch.randn(4, 6, mdn.output_size(m), generator=g) * scale).requires_grad_()
    target = torch.randn(4, 6, 3, generator=g) * (1 + offset)
    target[..., 2] = (target[..., 2] > 0).float()
    loss = mdn.sequence_nll(mdn.split_params(out), target, torch.ones(4, 6, dtype=torch.bool)).sum()
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(out.grad).all()


@pytest.mark.parametrize("rho_logit", [-30.0, 30.0])
@pytest.mark.parametrize("log_sigma", [-60.0, -10.0])
def test_degenerate_components_stay_finite(rho_logit, log_sigma):
    # tanh(30) is exactly 1.0 in float32 and exp(-60) squared underflows
    out = raw_output([0.0, 0.0], [[0, 0], [1, 1]], [[log_sigma, log_sigma]] * 2, [rho_logit] * 2, 0.0, torch.float32)
    out.requires_grad_()
    for target in ([0.0, 0.0, 0.0], [1.0, -1.0, 1.0], [1e6, -1e6, 0.0]):
        ll = mdn.log_likelihood(mdn.split_params(out), torch.tensor(target))
        (grad,) = torch.autograd.grad(ll, out)
        assert torch.isfinite(ll) and torch.isfinite(grad).all()


@SETTINGS
@given(p=mixtures(max_m=6), b1=st.floats(0, 5), b2=st.floats(0, 5))
def test_bias_zero_is_plain_and_more_bias_sharpens(p, b1, b2):
    out = raw_output(**p)
    plain = mdn.split_params(out, bias=0.0)
    m = len(p["weights"])
    assert torch.allclose(plain.log_sigma, torch.tensor(p["log_sigma"], dtype=torch.float64))
    assert torch.allclose(plain.log_weights.exp(), torch.softmax(torch.tensor(p["weights"], dtype=torch.float64), 0))
    assert plain.mu.shape == (m, 2)

    lo, hi = sorted((b1, b2))
    a, b = mdn.split_params(out, bias=lo), mdn.split_params(out, bias=hi)
    assert (b.log_sigma <= a.log_sigma + 1e-12).all()
    entropy = lambda mix: -(mix.log_weights.exp() * mix.log_weights).sum()  # noqa: E731
    assert entropy(b) <= entropy(a) + 1e-9
    assert b.log_weights.max() >= a.log_weights.max() - 1e-12
    assert torch.equal(a.mu, b.mu) and torch.equal(a.rho, b.rho) and torch.equal(a.eos_logit, b.eos_logit)


def test_split_params_rejects_a_wrong_width():
    with pytest.raises(ValueError, match="1 \\+ 6M"):
        mdn.split_params(torch.zeros(3, 8))


def test_sequence_nll_sums_only_real_points():
    g = torch.Generator().manual_seed(0)
    out = torch.randn(2, 5, mdn.output_size(3), generator=g)
    target = torch.randn(2, 5, 3, generator=g)
    target[..., 2] = 0.0
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    ll = mdn.log_likelihood(mdn.split_params(out), target)
    nll = mdn.sequence_nll(mdn.split_params(out), target, mask)
    assert torch.allclose(nll, torch.stack([-ll[0, :3].sum(), -ll[1].sum()]))
    out[0, 3:] = float("nan")  # whatever sits in padding never reaches the loss
    target[0, 3:] = 1e30
    assert torch.allclose(mdn.sequence_nll(mdn.split_params(out), target, mask), nll)


def test_sample_matches_a_single_components_mean_and_covariance():
    mu, sigma, rho, p_up = (1.0, -2.0), (0.5, 2.0), 0.6, 0.3
    n = 200_000
    out = raw_output([0.0], [mu], [np.log(sigma)], [math.atanh(rho)], math.log(p_up / (1 - p_up)), torch.float32)
    mix = mdn.split_params(out.expand(n, -1))
    s = mdn.sample(mix, torch.Generator().manual_seed(1)).double().numpy()
    assert s.shape == (n, 3)
    assert set(np.unique(s[:, 2])) == {0.0, 1.0}
    # standard errors: mean ~0.001/0.004, cov entries ~1%; tolerances are several SE but far below any real bug
    assert s[:, :2].mean(0) == pytest.approx(mu, abs=0.02)
    cov = np.cov(s[:, :2].T)
    want = [[0.25, rho * 1.0], [rho * 1.0, 4.0]]
    assert cov == pytest.approx(np.array(want), rel=0.03)
    assert s[:, 2].mean() == pytest.approx(p_up, abs=0.005)


def test_sample_picks_components_by_weight_and_is_reproducible():
    n = 40_000
    weights = [math.log(0.25), math.log(0.75)]
    out = raw_output(weights, [[-10, 0], [10, 0]], [[-3, -3]] * 2, [0.0, 0.0], 0.0, torch.float32)
    mix = mdn.split_params(out.expand(2, n, -1))  # extra leading axis: sample is vectorised
    s = mdn.sample(mix, torch.Generator().manual_seed(3))
    assert s.shape == (2, n, 3)
    assert (s[..., 0] > 0).float().mean().item() == pytest.approx(0.75, abs=0.01)
    assert torch.equal(s, mdn.sample(mix, torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("bias", [0.0, 0.7])
def test_sample_outputs_draws_from_the_same_mixture_as_sample(bias):
    """The fast path (raw outputs, noise made ahead) has ``split_params``' distribution, bias included."""
    mu, sigma, rho, p_up = (1.0, -2.0), (0.5, 2.0), 0.6, 0.3
    n = 200_000
    out = raw_output([0.0], [mu], [np.log(sigma)], [math.atanh(rho)], math.log(p_up / (1 - p_up)), torch.float32)
    noise = mdn.draw_noise((n,), 1, bias, torch.Generator().manual_seed(1))
    s = mdn.sample_outputs(out.expand(n, -1), noise, bias).double().numpy()
    assert s.shape == (n, 3)
    assert set(np.unique(s[:, 2])) == {0.0, 1.0}
    assert s[:, :2].mean(0) == pytest.approx(mu, abs=0.02)
    scale = math.exp(-bias)
    want = np.array([[0.25, rho * 1.0], [rho * 1.0, 4.0]]) * scale**2
    assert np.cov(s[:, :2].T) == pytest.approx(want, rel=0.03)
    assert s[:, 2].mean() == pytest.approx(p_up, abs=0.005)

    # component weights softmax(w * (1 + bias)); -10 and 10 apart, so the sign tells which
    weights = [math.log(0.25), math.log(0.75)]
    out = raw_output(weights, [[-10, 0], [10, 0]], [[-3, -3]] * 2, [0.0, 0.0], 0.0, torch.float32).expand(n, -1)
    noise = mdn.draw_noise((n,), 2, bias, torch.Generator().manual_seed(3))
    s = mdn.sample_outputs(out, noise, bias)
    p = torch.softmax(torch.tensor(weights) * (1 + bias), 0)[1].item()
    assert (s[:, 0] > 0).float().mean().item() == pytest.approx(p, abs=0.01)
    assert torch.equal(s, mdn.sample_outputs(out, noise, bias))
    into = torch.zeros(n, 4)
    assert mdn.sample_outputs(out, noise, bias, into=into[:, 1:]) is not None
    assert torch.equal(into[:, 1:], s)
