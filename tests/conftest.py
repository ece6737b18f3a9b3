"""Shared fixtures: tiny synthetic stroke stores written with ``write_store`` (lines from ``helpers``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from helpers import synthetic_lines
from hwkit.store import write_store

@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., Path]:
    """Build a store in the test's temp dir: ``make_store(name="tiny", n_lines=24, ...) -> path``.

    Splits default to 2/3 train, 1/6 valid, 1/6 test in index order; pass ``splits``
    to override (e.g. an empty valid split) and ``texts`` to control transcriptions.
    """

    def make(
        name: str = "tiny",
        *,
        n_lines: int = 24,
        seed: int = 0,
        min_points: int = 20,
        max_points: int = 120,
        texts: Sequence[str] | None = None,
        splits: Mapping[str, Sequence[int]] | None = None,
        skipped: Sequence[tuple[str, str]] = (),
        source: str = "demo",
        prepare_params: Mapping | None = None,
    ) -> Path:
        lines = synthetic_lines(n_lines, seed=seed, min_points=min_points, max_points=max_points, texts=texts)
        if splits is None:
            a, b = n_lines * 2 // 3, n_lines * 5 // 6
            splits = {"train": range(a), "valid": range(a, b), "test": range(b, n_lines)}
        return write_store(
            tmp_path / f"{name}.h5",
            lines,
            splits,
            skipped,
            source=source,
            prepare_params=prepare_params if prepare_params is not None else {"max_jump": 1000.0},
        )

    return make


@pytest.fixture
def tiny_store(make_store) -> Path:
    return make_store()


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models run fastest on one thread; on a busy 2-core machine more threads mostly wait for each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
