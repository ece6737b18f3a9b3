"""Write a checkpoint as the bundled demo model: weights, configs, alphabet, stats and valid losses; no training state.

The optimiser's moments and the random states are two thirds of a checkpoint and
only serve ``--resume``; a bundled model is for sampling, so they stay behind.

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
    print(f"{args.target}: step {slim.step}, epoch {slim.epoch}, valid {slim.best_valid:.1f} nats/line")


if __name__ == "__main__":
    main()
