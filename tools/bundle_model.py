"""Write a checkpoint as a bundled model: weights, configs, alphabet, stats, valid losses and house hands.

The optimiser's moments and the random states are two thirds of a checkpoint and
only serve ``--resume``; a bundled model is for sampling, so they stay behind.
House hands (``hwkit style house``) travel with the weights.

    hwkit style house models/demo-synthesis
    python tools/bundle_model.py models/demo-synthesis/best.pt hwkit/pretrained/demo-synthesis.pt
"""

from __future__ import annotations

import argparse

from hwkit.checkpoint import Checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a checkpoint written by hwkit train")
    parser.add_argument("target", help="where the bundled model goes")
    args = parser.parse_args()
    slim = Checkpoint.load(args.source).weights_only()
    slim.save(args.target)
    hands = f", {len(slim.hands)} house hands" if slim.hands else ""
    print(f"{args.target}: step {slim.step}, epoch {slim.epoch}, valid {slim.best_valid:.1f} nats/line{hands}")


if __name__ == "__main__":
    main()
