"""Dataset items, collate, the bucketed sampler and DataLoader workers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hwkit.dataset import POOL_BATCHES, BucketBatchSampler, StrokeDataset, collate, unbatch
from hwkit.errors import StoreError
from hwkit.store import Store
from hwkit.strokes import PEN_UP, denormalise


def test_item_shapes_dtypes_and_start_token(tiny_store):
    store = Store(tiny_store)
    ds = StrokeDataset(store, "train")
    assert len(ds) == len(store.split("train"))
    for pos in range(len(ds)):
        item = ds[pos]
        index = int(store.split("train")[pos])
        assert item.index == index and item.line_id == store.line_ids[index]
        assert item.offsets.dtype == torch.float32 and item.offsets.shape == (ds.lengths[pos], 3)
        assert item.chars.dtype == torch.int64
        assert item.chars.tolist() == store.alphabet.encode(store.texts[index]).tolist()
        assert item.offsets[0, :2].tolist() == [0.0, 0.0]


def test_denormalised_items_give_back_the_stored_offsets(tiny_store):
    store = Store(tiny_store)
    for split in ("train", "valid"):
        ds = StrokeDataset(store, split)
        items = [ds[i] for i in range(len(ds))]
        for item in items:
            raw = store.offsets(item.index)
            back = denormalise(item.offsets.numpy(), store.mean, store.std)
            np.testing.assert_allclose(back[1:], raw[1:], rtol=1e-5, atol=1e-4)
            assert np.array_equal(back[:, 2], raw[:, 2])
        for line, item in zip(unbatch(collate(items), store.mean, store.std), items):
            np.testing.assert_allclose(line[1:], store.offsets(item.index)[1:], rtol=1e-5, atol=1e-4)


def test_normalised_train_steps_have_zero_mean_unit_std(tiny_store):
    ds = StrokeDataset(tiny_store, "train")
    steps = torch.cat([ds[i].offsets[1:, :2] for i in range(len(ds))])
    torch.testing.assert_close(steps.mean(0), torch.zeros(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(steps.std(0, unbiased=False), torch.ones(2), atol=1e-3, rtol=0)


def test_crops_are_windows_of_the_line_fixed_by_seed_epoch_and_index(make_store):
    path = make_store(n_lines=30, min_points=10, max_points=200)
    store = Store(path)
    ds = StrokeDataset(store, "train", crop=40, seed=3)
    full = np.diff(store.line_offsets)[store.split("train")]
    assert np.array_equal(ds.lengths, np.minimum(full, 40))
    starts = {}
    for pos in range(len(ds)):
        item = ds[pos]
        raw = store.offsets(item.index)
        back = denormalise(item.offsets.numpy(), store.mean, store.std)
        assert len(back) == min(len(raw), 40)
        found = [
            s for s in range(len(raw) - len(back) + 1) if np.allclose(back[1:], raw[s + 1 : s + len(back)], atol=1e-3)
        ]
        assert found, "crop is not a window of its line"
        assert any(s == 0 or raw[s - 1, PEN_UP] > 0.5 for s in found), "crop starts inside a stroke"
        starts[pos] = found[0]
    again = StrokeDataset(store, "train", crop=40, seed=3)
    assert all(torch.equal(again[p].offsets, ds[p].offsets) for p in range(len(ds)))
    again.set_epoch(1)
    long = [p for p in range(len(ds)) if full[p] > 60]
    assert long and any(not torch.equal(again[p].offsets, ds[p].offsets) for p in long)


def test_in_memory_gives_the_same_items(tiny_store):
    lazy = StrokeDataset(tiny_store, "train", crop=50)
    memory = StrokeDataset(tiny_store, "train", crop=50, in_memory=True)
    for p in range(len(lazy)):
        assert torch.equal(lazy[p].offsets, memory[p].offsets)
        assert torch.equal(lazy[p].chars, memory[p].chars)


def test_empty_or_unknown_split_is_a_store_error(make_store):
    path = make_store(splits={"train": range(20), "valid": [], "test": range(20, 24)})
    with pytest.raises(StoreError, match="'valid' has no lines"):
        StrokeDataset(path, "valid")
    with pytest.raises(StoreError, match="unknown split"):
        StrokeDataset(path, "dev")


def test_collate_pads_and_masks_match_true_lengths(tiny_store):
    ds = StrokeDataset(tiny_store, "train")
    items = [ds[i] for i in (3, 0, 5, 1)]
    batch = collate(items)
    lengths = [len(it.offsets) for it in items]
    u = [len(it.chars) for it in items]
    assert batch.offsets.shape == (4, max(lengths), 3) and batch.offsets.dtype == torch.float32
    assert batch.chars.shape == (4, max(u)) and batch.chars.dtype == torch.int64
    assert batch.point_mask.dtype == torch.bool and batch.point_mask.sum(1).tolist() == lengths
    assert batch.char_mask.sum(1).tolist() == u
    for b, it in enumerate(items):
        assert torch.equal(batch.offsets[b, : lengths[b]], it.offsets)
        assert not batch.offsets[b, lengths[b] :].any() and not batch.chars[b, u[b] :].any()
        assert bool(batch.point_mask[b, : lengths[b]].all()) and not batch.point_mask[b, lengths[b] :].any()
    assert batch.line_ids == [it.line_id for it in items]
    assert batch.indices.tolist() == [it.index for it in items]
    assert batch.padding_fraction == pytest.approx(1 - sum(lengths) / (4 * max(lengths)))
    moved = batch.to("cpu")
    assert torch.equal(moved.offsets, batch.offsets) and moved.line_ids == batch.line_ids


def _sampler_args():
    return st.tuples(
        st.lists(st.integers(1, 500), min_size=1, max_size=120),
        st.integers(1, 12),
        st.booleans(),
        st.booleans(),
        st.integers(1, 4),
        st.integers(0, 5),
    )


@settings(max_examples=150, deadline=None)
@given(_sampler_args())
def test_sampler_covers_every_line_once_with_equal_disjoint_rank_shares(args):
    lengths, batch_size, shuffle, drop_last, replicas, epoch = args
    try:
        samplers = [
            BucketBatchSampler(
                lengths, batch_size, shuffle=shuffle, seed=7, drop_last=drop_last, num_replicas=replicas, rank=r
            )
            for r in range(replicas)
        ]
    except ValueError:
        needed = -(-len(lengths) // batch_size)
        assert not drop_last and needed + (-needed % replicas) > len(lengths)
        assume(False)
    for s in samplers:
        s.set_epoch(epoch)
    shares = [list(s) for s in samplers]
    for s, share in zip(samplers, shares):
        assert len(share) == len(s) == len(shares[0])
        assert all(1 <= len(b) <= batch_size for b in share)
    seen = [i for share in shares for b in share for i in b]
    assert len(seen) == len(set(seen))  # disjoint across batches and ranks
    if drop_last:
        assert all(len(b) == batch_size for share in shares for b in share)
        assert len(lengths) - len(seen) < batch_size * replicas
    else:
        assert sorted(seen) == list(range(len(lengths)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 1000), min_size=2, max_size=200), st.integers(1, 8))
def test_batches_hold_lines_of_similar_length(lengths, batch_size):
    lengths = np.array(lengths)
    # one pool when shuffling: batches cover disjoint, ordered length ranges
    for shuffle in (False, True):
        sampler = BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=1)
        assume(len(sampler) <= POOL_BATCHES)
        ranges = sorted((lengths[b].min(), lengths[b].max()) for b in sampler)
        assert all(hi <= lo for (_, hi), (lo, _) in zip(ranges, ranges[1:]))


def test_sampler_order_is_seeded_and_changes_per_epoch():
    lengths = np.random.default_rng(0).integers(10, 900, size=300)

    def epoch_batches(seed, epoch):
        s = BucketBatchSampler(lengths, 8, seed=seed)
        s.set_epoch(epoch)
        return list(s)

    assert epoch_batches(0, 0) == epoch_batches(0, 0)
    assert epoch_batches(0, 0) != epoch_batches(0, 1)
    assert epoch_batches(0, 0) != epoch_batches(1, 0)
    fixed = BucketBatchSampler(lengths, 8, shuffle=False)
    first = list(fixed)
    fixed.set_epoch(3)
    assert list(fixed) == first


def test_sampler_refuses_more_ranks_than_it_can_serve_without_repeats():
    with pytest.raises(ValueError, match="without repeats"):
        BucketBatchSampler([5, 6, 7], 1, num_replicas=2)
    assert len(BucketBatchSampler([5, 6, 7], 1, num_replicas=2, drop_last=True)) == 1


def _epoch(ds, workers: int, epoch: int) -> list:
    sampler = BucketBatchSampler(ds.lengths, 4, seed=5)
    sampler.set_epoch(epoch)
    ds.set_epoch(epoch)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=workers)
    return list(loader)


@pytest.mark.parametrize("in_memory", [False, True])
def test_two_workers_deliver_what_zero_workers_do(make_store, in_memory):
    ds = StrokeDataset(make_store(n_lines=36), "train", crop=50, seed=2, in_memory=in_memory)
    ds[0]  # the parent holds an open handle before the workers fork
    for epoch in (0, 1):
        serial, parallel = _epoch(ds, 0, epoch), _epoch(ds, 2, epoch)
        assert len(serial) == len(parallel) > 1
        for a, b in zip(serial, parallel):
            assert a.line_ids == b.line_ids
            assert torch.equal(a.offsets, b.offsets) and torch.equal(a.point_mask, b.point_mask)
            assert torch.equal(a.chars, b.chars)


def test_dataset_pickles_without_its_file_handle(tiny_store):
    ds = StrokeDataset(tiny_store, "train")
    first = ds[0]
    assert ds.store._file is not None
    copy = pickle.loads(pickle.dumps(ds))
    assert copy.store._file is None
    assert torch.equal(copy[0].offsets, first.offsets)
