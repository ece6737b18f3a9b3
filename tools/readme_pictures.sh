#!/usr/bin/env bash
# The README's pictures of the bundled model, made again by the commands their captions give
# (one CPU thread, about 3 minutes; the studio's screenshots come from
# `HWKIT_SCREENSHOTS=docs pytest tests/test_studio_browser.py`, and the evaluate grid from
# `hwkit evaluate ... --grid docs/evaluate_bundled.png`, README "Reading and evaluating").
# Needs cache/demo.h5 (`hwkit prepare --demo`): the style lines are its train lines.
# Look at every picture before committing it, and say in its caption what it shows.
# The model is named: without it `hwkit sample` takes the newest run in models/, which on a
# working machine is some experiment, not the bundled model the captions describe.
set -euo pipefail
export OMP_NUM_THREADS=1
out=$(mktemp -d)
model=hwkit/pretrained/demo-synthesis.pt
hwkit sample "$model" --text "hello from hwkit" --text "the quick brown fox jumps over the lazy dog" \
    --text "handwriting synthesis, Graves 2013" --bias 2 --seed 1 --png --plot-attention -o "$out/synthesis"
hwkit sample "$model" --text "in the hand of another writer" --style a01-009u-01 --style a06-019u-01 \
    --style a08-010u-02 --style a05-001u-01 --store cache/demo.h5 --keep-prime --bias 1.5 --seed 1 --png \
    -o "$out/styles"
hwkit sample "$model" --page A5 --margin 15mm --text-file docs/letter.txt --bias 1 --seed 1 --png -o "$out/letter"
ls -l "$out"
