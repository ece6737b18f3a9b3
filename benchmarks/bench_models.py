"""Training speed of hwkit's networks against per-step Python-loop baselines.

Each row times one training step (forward, MDN loss, backward, RMSprop step)
of an hwkit net and of a straightforward re-statement of the same network that
steps ``nn.LSTMCell``s (and, for synthesis, the window) in a Python loop over
time. The baselines are loaded with the hwkit net's own weights and checked to
give the same outputs, so both sides do the same maths. Steps alternate
between the two sides, with a large float32 ``torch.mm`` timed between them,
so that load from others on a shared machine hits all three alike. Each
reports its best time: other processes can only add time, so the best of a
few is the steadiest estimate of what the code itself costs. ``TFLOP/s`` is
the model's matmul work per second, also given as a fraction of that ``mm``.

On a crowded machine, ``--threads 1 --clock cpu`` times with the process's
CPU clock, which time spent waiting for a core does not advance; with more
than one thread it would count threads spinning at barriers, so it is refused.

    python benchmarks/bench_models.py [--quick] [--device cuda]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from hwkit import mdn
from hwkit.config import ModelConfig
from hwkit.models import PredictionNet, SynthesisNet, build_model


def cells_like(lstms: nn.ModuleList) -> nn.ModuleList:
    """``nn.LSTMCell`` copies of single-layer ``nn.LSTM``s, same weights."""
    cells = nn.ModuleList()
    for lstm in lstms:
        cell = nn.LSTMCell(lstm.input_size, lstm.hidden_size).to(lstm.weight_hh_l0.device)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(lstm, name + "_l0").data)
        cells.append(cell)
    return cells


class CellPrediction(nn.Module):
    """The prediction net stepped one point at a time through ``nn.LSTMCell``s."""

    def __init__(self, net: PredictionNet) -> None:
        super().__init__()
        self.cells = cells_like(net.lstms)
        self.head = copy.deepcopy(net.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t_len, _ = x.shape
        state = [(x.new_zeros(b, c.hidden_size), x.new_zeros(b, c.hidden_size)) for c in self.cells]
        outs = []
        for t in range(t_len):
            inp, hs = x[:, t], []
            for i, cell in enumerate(self.cells):
                state[i] = cell(inp, state[i])
                hs.append(state[i][0])
                inp = torch.cat([x[:, t], state[i][0]], dim=1)
            outs.append(self.head(torch.cat(hs, dim=1)))
        return torch.stack(outs, dim=1)


class CellSynthesis(nn.Module):
    """The synthesis net with every layer and the window stepped in a Python loop."""

    def __init__(self, net: SynthesisNet) -> None:
        super().__init__()
        self.config = net.config
        self.layer1, self.window, self.head = (copy.deepcopy(m) for m in (net.cell, net.window, net.head))
        self.cells = cells_like(net.lstms)

    def forward(self, x: torch.Tensor, chars: torch.Tensor, char_mask: torch.Tensor) -> torch.Tensor:
        b, t_len, _ = x.shape
        a, k, hid = self.config.alphabet_size, self.config.window_mixtures, self.config.hidden
        onehot = F.one_hot(chars, a).to(x.dtype) * char_mask.unsqueeze(-1)
        u = torch.arange(1, chars.shape[1] + 1, device=x.device, dtype=x.dtype)
        state = [(x.new_zeros(b, hid), x.new_zeros(b, hid)) for _ in range(1 + len(self.cells))]
        kappa, w = x.new_zeros(b, k), x.new_zeros(b, a)
        outs = []
        for t in range(t_len):
            state[0] = self.layer1(torch.cat([x[:, t], w], dim=1), state[0])
            alpha, beta, step = torch.exp(self.window(state[0][0])).chunk(3, dim=1)
            kappa = kappa + step
            phi = (alpha.unsqueeze(2) * torch.exp(-beta.unsqueeze(2) * (kappa.unsqueeze(2) - u) ** 2)).sum(1)
            w = torch.bmm((phi * char_mask).unsqueeze(1), onehot).squeeze(1)
            hs = [state[0][0]]
            for i, cell in enumerate(self.cells, start=1):
                state[i] = cell(torch.cat([x[:, t], hs[-1], w], dim=1), state[i])
                hs.append(state[i][0])
            outs.append(self.head(torch.cat(hs + [w], dim=1)))
        return torch.stack(outs, dim=1)


def matmul_flops_per_point(config: ModelConfig) -> float:
    """Forward multiply-add FLOPs per point (LSTM gates, window, output layer)."""
    h, n, a, m = config.hidden, config.layers, config.alphabet_size, config.mixtures
    extra = a if config.kind == "synthesis" else 0
    gates = 2 * 4 * h * ((3 + extra + h) + (n - 1) * (3 + h + extra + h))
    window = 2 * h * 3 * config.window_mixtures if config.kind == "synthesis" else 0
    head = 2 * (n * h + extra) * mdn.output_size(m)
    return gates + window + head


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class MatmulProbe:
    """Float32 ``torch.mm`` throughput (best sample), sampled between training steps."""

    def __init__(self, device: torch.device, size: int, clock) -> None:
        self.device, self.size, self.clock = device, size, clock
        self.a = torch.randn(size, size, device=device)
        self.b = torch.randn(size, size, device=device)
        self.samples: list[float] = []

    def sample(self, n: int = 3) -> None:
        for _ in range(n):
            sync(self.device)
            t0 = self.clock()
            torch.mm(self.a, self.b)
            sync(self.device)
            self.samples.append(2 * self.size**3 / (self.clock() - t0))

    def flops(self) -> float:
        return max(self.samples)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, call, target, mask, device, clock) -> float:
    sync(device)
    t0 = clock()
    out = call(model)
    loss = mdn.sequence_nll(mdn.split_params(out), target, mask).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sync(device)
    return clock() - t0


def compare(
    name, config, net, baseline, call_net, call_base, x, target, mask, iters, device, mm: MatmulProbe
) -> list[dict]:
    with torch.no_grad():  # same weights, same maths: both sides must agree before they are timed
        diff = (call_net(net) - call_base(baseline)).abs().max().item()
    if diff > 1e-3:
        raise AssertionError(f"{name}: baseline disagrees with the hwkit net by {diff}")
    sides = {"hwkit": (net, call_net), "baseline": (baseline, call_base)}
    opts = {k: torch.optim.RMSprop(m.parameters(), lr=1e-4) for k, (m, _) in sides.items()}
    times: dict[str, list[float]] = {k: [] for k in sides}
    peak: dict[str, float] = {}
    for i in range(iters + 1):  # the first round warms up and is dropped
        for k, (model, call) in sides.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            dt = train_step(model, opts[k], call, target, mask, device, mm.clock)
            if i:
                times[k].append(dt)
            if device.type == "cuda":
                peak[k] = torch.cuda.max_memory_allocated(device) / 2**30
        if i:
            mm.sample()
    points = x.shape[0] * x.shape[1]
    best = {k: min(v) for k, v in times.items()}
    flops = 3 * matmul_flops_per_point(config) * points  # backward ~ 2x forward
    return [
        dict(
            net=name,
            side=k,
            seconds=best[k],
            points_per_s=points / best[k],
            speedup=best["baseline"] / best[k],
            tflops=flops / best[k] / 1e12,
            peak_gib=peak.get(k),
        )
        for k in sides
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer timed steps")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"], help="cpu: process CPU time (1 thread only)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--points", type=int, default=300, help="points per line")
    ap.add_argument("--chars", type=int, default=12, help="characters per text (synthesis)")
    ap.add_argument("--alphabet", type=int, default=80, help="one-hot size (synthesis)")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is visible to torch")
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and (device.type != "cpu" or torch.get_num_threads() != 1):
        ap.error("--clock cpu needs --device cpu --threads 1")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    iters = 2 if args.quick else 5
    torch.manual_seed(0)

    b, t = args.batch, args.points
    x = torch.randn(b, t + 1, 3, device=device)
    x[..., 2] = (x[..., 2] > 1.0).float()
    inp, target = x[:, :-1], x[:, 1:]
    mask = torch.ones(b, t, dtype=torch.bool, device=device)
    chars = torch.randint(1, args.alphabet, (b, args.chars), device=device)
    char_mask = torch.ones_like(chars, dtype=torch.bool)

    mm = MatmulProbe(device, 4096 if device.type == "cuda" else 2048, clock)
    rows = []
    pred = ModelConfig("prediction")
    net = build_model(pred).to(device)
    rows += compare(
        "prediction", pred, net, CellPrediction(net),
        lambda m: m(inp)[0], lambda m: m(inp), inp, target, mask, iters, device, mm,
    )  # fmt: skip
    syn = ModelConfig("synthesis", alphabet_size=args.alphabet)
    net = build_model(syn).to(device)
    rows += compare(
        "synthesis", syn, net, CellSynthesis(net),
        lambda m: m(inp, chars, char_mask)[0], lambda m: m(inp, chars, char_mask), inp, target, mask, iters, device, mm,
    )  # fmt: skip

    peak = mm.flops()
    threads = torch.get_num_threads() if device.type == "cpu" else "-"
    print(f"device {args.device} ({threads} threads, {args.clock} clock), batch {b} x {t} points, 3 x 400 LSTM, M=20, "
          f"K=10, {args.chars} chars of {args.alphabet}; best of {iters} steps; "
          f"fp32 {mm.size}x{mm.size} matmul {peak / 1e12:.3f} TFLOP/s")  # fmt: skip
    print()
    mem = device.type == "cuda"
    head = "| net | side | s/step | points/s | speedup | TFLOP/s | of fp32 mm |" + (" peak GiB |" if mem else "")
    print(head)
    print("|" + "---|" * head.count(" |"))
    for r in rows:
        line = (
            f"| {r['net']} | {r['side']} | {r['seconds']:.3f} | {r['points_per_s']:,.0f} | {r['speedup']:.2f}x | "
            f"{r['tflops']:.3f} | {100 * r['tflops'] * 1e12 / peak:.0f}% |"
        )
        print(line + (f" {r['peak_gib']:.2f} |" if mem else ""))


if __name__ == "__main__":
    main()
