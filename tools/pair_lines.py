"""A store of same-writer line pairs from a store (``hwkit.pairing``): training lines shaped like primed ones.

    python tools/pair_lines.py cache/demo-caps6.h5 -o cache/demo-pairs6.h5

Each split's lines are paired within their writer, so the splits stay apart; the
new store records its source store and the pairing in ``prepare_params``.
"""

from __future__ import annotations

import argparse

from hwkit.pairing import SPACE, same_writer_pairs
from hwkit.store import Store, write_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="the store whose lines are paired")
    parser.add_argument("-o", "--output", required=True, help="the store of pairs to write")
    parser.add_argument("--seed", type=int, default=0, help="the order lines are paired in (default 0)")
    parser.add_argument("--force", action="store_true", help="replace an existing output")
    args = parser.parse_args()
    store = Store(args.store).load()
    lines, splits = [], {}
    for name in ("train", "valid", "test"):
        pairs = same_writer_pairs(list(store.iter_split(name)), seed=args.seed)
        splits[name] = range(len(lines), len(lines) + len(pairs))
        lines += pairs
    params = {**store.prepare_params, "pairs": {"from": str(args.store), "fingerprint": store.fingerprint,
                                                "seed": args.seed, "space_x_heights": SPACE}}  # fmt: skip
    write_store(args.output, lines, splits, source=store.source, source_fingerprint=store.fingerprint,
                prepare_params=params, force=args.force)
    print(f"{args.output}: {', '.join(f'{len(r):,} {n}' for n, r in splits.items())} pairs")


if __name__ == "__main__":
    main()
