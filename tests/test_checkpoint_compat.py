"""Checkpoints written before the ``Checkpoint`` class (``fixtures/checkpoint-v1``) still sample and resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hwkit.checkpoint import Checkpoint
from hwkit.generate import generate
from hwkit.train import resume

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoint-v1"


@pytest.mark.parametrize("kind", ["synthesis", "prediction"])
def test_an_old_checkpoint_still_samples(kind):
    assert "scheduler" in torch.load(FIXTURES / f"{kind}.pt", weights_only=True)  # really the old layout
    texts = ["the fox"] if kind == "synthesis" else []
    made = generate(FIXTURES / f"{kind}.pt", texts, n=2, length=None if texts else 30, seed=0)
    assert made.kind == kind and len(made.result.lines) == 2
    assert all(np.isfinite(line.offsets).all() and len(line.offsets) > 1 for line in made.result.lines)


@pytest.mark.parametrize("kind", ["synthesis", "prediction"])
def test_an_old_checkpoint_still_resumes_and_finds_its_store(kind, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(FIXTURES / f"{kind}.pt", run / "last.pt")
    monkeypatch.chdir(FIXTURES.parent.parent)  # the store is recorded as fixtures/checkpoint-v1/store.h5, from tests/
    old = Checkpoint.load(run / "last.pt")
    result = resume(run, max_steps=5)
    assert (old.step, result.steps) == (3, 5)
    new = Checkpoint.load(run / "last.pt")
    assert new.step == 5 and new.store["fingerprint"] == old.store["fingerprint"]
    assert "scheduler" not in torch.load(run / "last.pt", weights_only=True)
    assert [m["step"] for m in new.metrics if m["kind"] == "valid"][-1] == 5
