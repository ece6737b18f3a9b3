"""Write a checkpoint as a bundled model: weights, configs, alphabet, stats, valid losses and house hands.

The optimiser's moments and the random states are two thirds of a checkpoint and
only serve ``--resume``; a bundled model is for sampling, so they stay behind.
``--hands-from STORE`` has the model write valid texts of that store in one
train line of each writer, and carries the hands its writing reads back best
(``hwkit.legibility.house_hands``; ``--reader`` judges, default the store's).

    python tools/bundle_model.py models/demo-synthesis/best.pt hwkit/pretrained/demo-synthesis.pt \\
        --hands-from cache/demo.h5
"""

from __future__ import annotations

import argparse

from hwkit.checkpoint import Checkpoint
from hwkit.legibility import HAND_TEXTS, HOUSE_HANDS, house_hands, reader_for_store
from hwkit.paths import MODELS_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a checkpoint written by hwkit train")
    parser.add_argument("target", help="where the bundled model goes")
    parser.add_argument("--hands-from", metavar="STORE", help="choose house hands among this store's train lines")
    parser.add_argument("--hands", type=int, default=HOUSE_HANDS, help="how many house hands to carry")
    parser.add_argument("--texts", type=int, default=HAND_TEXTS, help="valid texts each candidate hand writes")
    parser.add_argument("--reader", help="recognizer that reads the candidates back [default: the store's]")
    args = parser.parse_args()
    slim = Checkpoint.load(args.source).weights_only()
    if args.hands_from:
        from hwkit.reading import Reader
        from hwkit.store import Store

        store = Store(args.hands_from)
        reader = args.reader or reader_for_store(store.fingerprint, MODELS_DIR)
        if reader is None:
            parser.error(f"no recognizer of {args.hands_from} found; pass --reader")

        def show(event: dict) -> None:
            print(f"  hand {event['done']}/{event['total']}: {event['line_id']}  CER {event['cer']:.1%}", flush=True)

        slim.hands = house_hands(slim, store, Reader(Checkpoint.load(reader), "cpu"), count=args.hands,
                                 texts=args.texts, progress=show)  # fmt: skip
        print("house hands: " + ", ".join(f"{h['line_id']} ({h['cer']:.1%})" for h in slim.hands))
    slim.save(args.target)
    print(f"{args.target}: step {slim.step}, epoch {slim.epoch}, valid {slim.best_valid:.1f} nats/line")


if __name__ == "__main__":
    main()
