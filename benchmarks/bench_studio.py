"""The studio: time from pressing Write to the first point on screen, against waiting for the whole writing.

Starts the studio on a free port (uvicorn in a thread, the bundled model, loaded
before timing), then posts write requests over real HTTP and reads the event
stream: "first point" is when the first ``points`` event arrives, "all lines"
when ``done`` does. Without streaming (the straightforward way: sample, then
send) the first point would show only when all lines are done, so the ratio
column is how much sooner the page starts drawing. Median of ``--repeats``
requests, different seeds.

    python benchmarks/bench_studio.py [--threads 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time

import torch
import uvicorn

from hwkit.studio.app import create_app
from hwkit.studio.service import Studio

TEXTS = {1: "the quick brown fox jumps over the lazy dog",
         4: "the quick brown fox jumps over the lazy dog\nhandwriting synthesis in the browser\n"
            "a third line of text to write\nand the fourth line ends it"}  # fmt: skip


def timed_write(port: int, text: str, seed: int) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = json.dumps({"text": text, "seed": seed, "bias": 1.0})
    start = time.perf_counter()
    conn.request("POST", "/api/write", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    first = None
    buffer = b""
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        buffer += chunk
        if first is None and b"event: points" in buffer:
            first = time.perf_counter() - start
        if b"event: done" in buffer:
            break
    conn.close()
    return first, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        studio = Studio(root)
        studio.load("bundled")
        server = uvicorn.Server(uvicorn.Config(create_app(studio), host="127.0.0.1", port=0, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        timed_write(port, "warm up", 0)
        print(f"| lines | first point (s) | all lines (s) | first point sooner by |  ({args.threads} thread(s))")
        print("|---:|---:|---:|---:|")
        for n, text in TEXTS.items():
            runs = [timed_write(port, text, seed) for seed in range(1, args.repeats + 1)]
            first = statistics.median(r[0] for r in runs)
            done = statistics.median(r[1] for r in runs)
            print(f"| {n} | {first:.3f} | {done:.2f} | {done / first:.0f}x |")
        server.should_exit = True


if __name__ == "__main__":
    main()
