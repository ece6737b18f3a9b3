"""The CUDA paths: skipped without a GPU (CI has none); ``benchmarks/gpu_check.sh`` runs them on one.

What a CPU cannot show: cuDNN's fused LSTM computes what the CPU does, the
stepper and the sampler run on the device, a CUDA-trained checkpoint samples on
a CPU, and ``--bf16`` / ``--compile`` are each checked against fp32 eager on a
real batch and either kept or refused with a reason. NCCL needs two GPUs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from helpers import checkpoint_dict
from hwkit.checkpoint import Checkpoint
from hwkit.dataset import StrokeDataset, collate
from hwkit.config import ModelConfig
from hwkit.models import Stepper, build_model
from hwkit.sample import sample_unconditional
from hwkit.store import Store
from hwkit.config import make_configs
from hwkit.train import check_fast_paths, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

STATS = {"mean": [0.0, 0.0], "std": [1.0, 1.0]}


@pytest.fixture(autouse=True)
def exact_fp32():
    """cuDNN's RNNs may use TF32 by default; compare against the CPU in full fp32."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def _model(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(kind, hidden=64, layers=3, mixtures=5, window_mixtures=3, alphabet_size=12 if kind == "synthesis" else 0)
    return build_model(config).eval()


@pytest.mark.parametrize("kind", ["prediction", "synthesis"])
def test_the_gpu_computes_what_the_cpu_does_fused_and_stepped(kind):
    cpu = _model(kind)
    gpu = _model(kind).cuda()
    x = torch.randn(4, 30, 3, generator=torch.Generator().manual_seed(0))
    chars = torch.randint(1, 12, (4, 7), generator=torch.Generator().manual_seed(1))
    args = (x, chars, chars != 0) if kind == "synthesis" else (x,)
    with torch.no_grad():
        want = cpu(*args)[0]
        got = gpu(*(a.cuda() for a in args))[0].cpu()
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)

    stepper = Stepper(gpu, chars.cuda(), (chars != 0).cuda()) if kind == "synthesis" else Stepper(gpu)
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            out, state, _ = stepper(x[:, t].cuda(), state)
            outs.append(out.cpu())
    torch.testing.assert_close(torch.stack(outs, 1), want, atol=1e-4, rtol=1e-4)


def test_sampling_on_the_gpu_repeats_with_the_seed():
    model = _model("prediction").cuda()
    a = sample_unconditional(model, 3, stats=STATS, length=60, seed=7)
    b = sample_unconditional(model, 3, stats=STATS, length=60, seed=7)
    for la, lb in zip(a.lines, b.lines):
        assert (la.offsets == lb.offsets).all()


def test_the_bundled_model_writes_in_a_house_hand_with_tries_on_the_gpu(tmp_path):
    from hwkit.checkpoint import BUNDLED
    from hwkit.generate import generate

    made = generate(BUNDLED, ["hello from the gpu"], bias=1.0, seed=1, device="cuda", models_dir=tmp_path)
    assert made.device.startswith("cuda") and made.tries > 1 and made.result.lines[0].stop == "rule"
    assert any("house hand" in note for note in made.notes)


@pytest.mark.parametrize("kind", ["prediction", "synthesis"])
def test_training_on_cuda_with_bf16_and_compile_leaves_a_checkpoint_that_samples_on_the_cpu(make_store, tmp_path, kind):
    store = make_store(n_lines=24, max_points=60)
    size = len(Store(store).alphabet) if kind == "synthesis" else 0
    model_config, config = make_configs(kind, "tiny", alphabet_size=size, device="cuda", bf16=True, compile=True)
    events = []
    result = train(store, model_config, config, run_dir=tmp_path / "run", progress=events.append)
    assert result.steps > 0 and result.best_path is not None
    notes = " ".join(e["text"] for e in events if e["event"] == "note")
    print(f"{kind}: {notes or 'bf16 and compile kept'}")  # the GPU check's log says which were kept
    ckpt = Checkpoint.load(result.best_path)  # to the CPU
    model = ckpt.build_model()
    assert next(model.parameters()).device.type == "cpu"
    if kind == "prediction":
        line = sample_unconditional(model, 1, stats=ckpt.stats, length=20, seed=0).lines[0]
        assert torch.isfinite(torch.as_tensor(line.offsets)).all()


def test_fast_paths_are_judged_on_the_gpu(make_store):
    """Each of bf16 and compile is kept, or refused with a note that says why: never silently dropped."""
    store = make_store(n_lines=24, max_points=60)
    batch = collate([StrokeDataset(store, "train")[i] for i in range(4)]).to(torch.device("cuda"))
    model = _model("prediction").cuda().train()
    net, bf16, notes = check_fast_paths(model, batch, bf16=True, compile=True)
    compiled = net is not model
    assert compiled or any("compile" in n for n in notes)
    assert bf16 or any("bf16" in n for n in notes)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL needs two GPUs")
def test_two_gpu_nccl_ddp_run(make_store, tmp_path):
    store = make_store(n_lines=24, max_points=60)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "hwkit", "train", str(store), "--preset", "tiny", "--name", "ddp", "--device", "cuda", "--batch-size", "4",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert checkpoint_dict(tmp_path / "models" / "ddp" / "last.pt")["step"] == 4
