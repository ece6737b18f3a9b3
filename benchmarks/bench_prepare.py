"""Benchmark ``prepare`` against a straightforward parser on an IAM-OnDB-sized tree.

The tree (about 12,000 line files and 5 million points by default, in the real
layout: lineStrokes/, ascii/, original/, task lists, and the same as archives)
is generated once with numpy random walks into ``benchmarks/out/`` and reused.

The baseline is what one writes first: one process, ElementTree per file, a
Python loop per point building offsets, the result pickled. Each run happens in
its own subprocess, which reports its wall time and peak RSS (its own, and the
largest of its children: the parsing workers). Prints one markdown table.

    python benchmarks/bench_prepare.py               # full size
    python benchmarks/bench_prepare.py --lines 2000  # quicker
    python benchmarks/bench_prepare.py --scales 1,5,20   # memory against corpus size (IAM x 1, 5, 20)
    python benchmarks/bench_prepare.py --demo        # the quickstart's `hwkit prepare`, 1 process vs --jobs

``--demo`` times what the quickstart's ``hwkit prepare`` does (generate the
built-in demo corpus, 3,000 lines, then prepare it) in a fresh folder, with one
process (the baseline) and with ``--jobs``; three rounds each, the best kept.

``--scales`` prepares trees of ``--lines`` x each scale (folders, ``--jobs``) and
prints lines vs peak RSS vs seconds: memory must stay flat as the corpus grows
(the points wait in a spool file, not in memory). The 20x tree takes about
5 GB of disk in ``benchmarks/out/``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
LINES_PER_FORM = 8
FORMS_PER_WRITER = 7
POINT = '      <Point x="%d" y="%d" time="%.3f"/>\n'
HEAD = (
    '<?xml version="1.0" encoding="ISO-8859-1"?>\n<WhiteboardCaptureSession>\n  <WhiteboardDescription>\n'
    '    <SensorLocation corner="top_left"/>\n    <DiagonallyOppositeCoords x="6512" y="1376"/>\n'
    '    <VerticallyOppositeCoords x="966" y="1376"/>\n    <HorizontallyOppositeCoords x="6512" y="787"/>\n'
    "  </WhiteboardDescription>\n  <StrokeSet>\n"
)
SPLIT_OF_FORM = ("trainset",) * 5 + ("testset_v", "testset_t", "testset_f")  # about the official shares
WORDS = "the of and to in is was he for it with as his on be at by had are but from or have an they which".split()


def make_tree(root: Path, n_lines: int, points_per_line: int, seed: int = 0) -> Path:
    """Write (or reuse) a tree of ``n_lines`` line files averaging ``points_per_line`` points."""
    params = {"lines": n_lines, "points_per_line": points_per_line, "seed": seed, "version": 1}
    marker = root / "BENCH.json"
    if marker.is_file() and json.loads(marker.read_text()) == params:
        return root
    rng = np.random.default_rng(seed)
    n_forms = -(-n_lines // LINES_PER_FORM)
    lists: dict[str, list[str]] = {"trainset": [], "testset_v": [], "testset_t": [], "testset_f": []}
    for k in range(n_forms):
        folder = f"{chr(ord('a') + k // 1980)}{k // 20 % 99 + 1:02d}-{k % 20:03d}"
        form = folder + "u"
        where = f"{folder[:3]}/{folder}"
        texts = []
        for n in range(1, min(LINES_PER_FORM, n_lines - k * LINES_PER_FORM) + 1):
            size = max(20, int(rng.normal(points_per_line, points_per_line / 4)))
            xy = np.cumsum(rng.integers(-30, 31, size=(size, 2)), axis=0) + [800, 700]
            xy[:, 0] += 4 * np.arange(size)  # drift right, as a line of writing does
            ends = np.unique(np.append(np.sort(rng.choice(np.arange(1, size), size // 30, replace=False)), size))
            parts, t, start = [HEAD], 1000.0, 0
            for end in ends:
                seg = xy[start:end]
                times = t + 0.01 * np.arange(len(seg))
                parts.append(f'    <Stroke colour="black" start_time="{t:.3f}" end_time="{times[-1]:.3f}">\n')
                parts.append((POINT * len(seg)) % tuple(np.column_stack([seg, times]).ravel().tolist()))
                parts.append("    </Stroke>\n")
                t, start = times[-1] + 0.3, end
            parts.append("  </StrokeSet>\n</WhiteboardCaptureSession>\n")
            _put(root / f"lineStrokes/{where}/{form}-{n:02d}.xml", "".join(parts))
            texts.append(" ".join(rng.choice(WORDS, size=int(rng.integers(4, 9)))))
        block = "\n".join(texts)
        _put(root / f"ascii/{where}/{form}.txt", f"OCR:\n\n{block}\n\nCSR:\n\n{block}\n")
        writer = 10000 + k // FORMS_PER_WRITER
        _put(
            root / f"original/{where}/strokesu.xml",
            f'<?xml version="1.0"?>\n<WhiteboardCaptureSession>\n  <General>\n'
            f'    <Form id="{form}" writerID="{writer}"/>\n  </General>\n</WhiteboardCaptureSession>\n',
        )
        lists[SPLIT_OF_FORM[k % len(SPLIT_OF_FORM)]].append(form)
    for name, forms in lists.items():
        _put(root / f"{name}.txt", "".join(f"{f}\n" for f in forms))
    marker.write_text(json.dumps(params))
    return root


def make_archives(tree: Path, root: Path) -> Path:
    """The same corpus as the three archives the site ships (plus the task lists)."""
    stamp = (tree / "BENCH.json").read_text()
    if (root / "BENCH.json").is_file() and (root / "BENCH.json").read_text() == stamp:
        return root
    root.mkdir(parents=True, exist_ok=True)
    for part, archive in (("lineStrokes", "lineStrokes-all"), ("ascii", "ascii-all"), ("original", "original-xml-all")):
        with tarfile.open(root / f"{archive}.tar.gz", "w:gz", compresslevel=6) as tar:
            tar.add(tree / part, arcname=part)
    for path in tree.glob("*.txt"):
        (root / path.name).write_bytes(path.read_bytes())
    (root / "BENCH.json").write_text(stamp)
    return root


def _put(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("iso-8859-1"))


def baseline(root: Path, out: Path) -> tuple[int, int]:
    """The obvious parser: ElementTree per file, a Python loop per point, pickle."""
    texts: dict[str, list[str]] = {}
    for path in sorted((root / "ascii").rglob("*.txt")):
        content = path.read_text(encoding="iso-8859-1").split("CSR:", 1)[1].strip().splitlines()
        texts[path.stem] = content
    records = []
    n_points = 0
    for path in sorted((root / "lineStrokes").rglob("*.xml")):
        form, number = path.stem.rsplit("-", 1)
        rows = []
        px = py = None
        for stroke in ET.parse(path).getroot().iter("Stroke"):
            points = stroke.findall("Point")
            for i, p in enumerate(points):
                x, y = float(p.get("x")), float(p.get("y"))
                rows.append((0.0 if px is None else x - px, 0.0 if py is None else y - py, float(i == len(points) - 1)))
                px, py = x, y
        records.append((path.stem, texts[form][int(number) - 1], np.array(rows, dtype=np.float32)))
        n_points += len(rows)
    with open(out, "wb") as f:
        pickle.dump(records, f)
    return len(records), n_points


def run_one(kind: str, source: Path, out: Path, jobs: int) -> dict:
    """Runs inside a fresh subprocess: do one job, report wall and CPU time and peak RSS.

    CPU time (user + system, this process and its workers) is reported beside
    wall time because the machine is shared: other people's jobs stretch wall
    time, CPU time much less.
    """
    from hwkit.prepare import prepare_corpus  # imported before timing, as the baseline's modules are

    def cpu() -> float:
        own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    if kind == "baseline":
        lines, points = baseline(source, out)
    elif kind == "demo":  # ``source``: an empty folder to work in, as a fresh checkout is
        import os

        from hwkit.config import DemoParams
        from hwkit.prepare import prepare

        os.chdir(source)
        report = prepare(demo=DemoParams(), output=out, jobs=jobs, force=True)
        lines, points = sum(report.lines.values()), report.points
    else:
        report = prepare_corpus(source, out, jobs=jobs, force=True)
        lines, points = sum(report.lines.values()), report.points
    wall, cpu_time = time.perf_counter() - t0, cpu() - c0
    per_mb = 2**20 if sys.platform == "darwin" else 2**10  # ru_maxrss is bytes on macOS, KiB elsewhere
    return {
        "wall": wall,
        "cpu": cpu_time,
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / per_mb,
        "workers_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / per_mb,
        "lines": lines,
        "points": points,
    }


def measure(kind: str, source: Path, out: Path, jobs: int) -> dict:
    cmd = [sys.executable, __file__, "--run-one", kind, str(source), str(out), str(jobs)]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=12000, help="line files in the tree (default 12000)")
    parser.add_argument("--points", type=int, default=420, help="average points per line (default 420)")
    parser.add_argument("--jobs", type=int, default=2, help="workers for prepare (default 2)")
    parser.add_argument("--scales", help="comma-separated multiples of --lines: the memory-vs-size table only")
    parser.add_argument("--run-one", nargs=4, metavar=("KIND", "SOURCE", "OUT", "JOBS"), help=argparse.SUPPRESS)
    parser.add_argument("--demo", action="store_true", help="time the quickstart's demo prepare instead")
    args = parser.parse_args()
    if args.run_one:
        kind, source, out, jobs = args.run_one
        print(json.dumps(run_one(kind, Path(source), Path(out), int(jobs))))
        return

    if args.demo:
        import tempfile

        best = {}
        for _ in range(3):
            for jobs in (1, args.jobs):
                with tempfile.TemporaryDirectory(dir=OUT) as work:
                    r = measure("demo", Path(work), Path(work) / "demo.h5", jobs)
                if jobs not in best or r["wall"] < best[jobs]["wall"]:
                    best[jobs] = r
        base = best[1]
        print("| hwkit prepare (demo corpus, 3,000 lines) | wall s | speed-up (wall) | CPU s | lines kept |")
        print("|---|---:|---:|---:|---:|")
        for jobs, r in best.items():
            label = "baseline: one process" if jobs == 1 else f"--jobs {jobs}"
            print(f"| {label} | {r['wall']:.2f} | {base['wall'] / r['wall']:.2f}x | {r['cpu']:.2f} | {r['lines']:,} |")
        return

    if args.scales:
        print(f"| corpus | lines | points | wall s | CPU s | peak RSS MB main / worker | (prepare, folders, --jobs {args.jobs}) |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for scale in [int(x) for x in args.scales.split(",")]:
            n = args.lines * scale
            tree = make_tree(OUT / f"iam-{n}x{args.points}", n, args.points)
            r = measure("prepare", tree, OUT / "bench.h5", args.jobs)
            print(f"| IAM x {scale} | {r['lines']:,} | {r['points']:,} | {r['wall']:.1f} | {r['cpu']:.1f} | "
                  f"{r['rss']:.0f} / {r['workers_rss']:.0f} | |", flush=True)
        return

    tree = make_tree(OUT / f"iam-{args.lines}x{args.points}", args.lines, args.points)
    archives = make_archives(tree, OUT / f"iam-{args.lines}x{args.points}-archives")
    runs = [
        ("baseline: ElementTree + per-point loop + pickle, 1 process", "baseline", tree, 1),
        ("prepare, folders, --jobs 1", "prepare", tree, 1),
        (f"prepare, folders, --jobs {args.jobs}", "prepare", tree, args.jobs),
        ("prepare, archives, --jobs 1", "prepare", archives, 1),
        (f"prepare, archives, --jobs {args.jobs}", "prepare", archives, args.jobs),
    ]
    results = []
    for label, kind, source, jobs in runs:
        out = OUT / ("baseline.pkl" if kind == "baseline" else "bench.h5")
        results.append((label, kind == "prepare" and jobs > 1, measure(kind, source, out, jobs)))
    base = results[0][2]
    print(f"{base['lines']:,} lines, {base['points']:,} points\n")
    print("| run | wall s | speed-up (wall) | CPU s | speed-up (CPU) | peak RSS MB main / worker | lines kept |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, pooled, r in results:
        rss = f"{r['rss']:.0f} / {r['workers_rss']:.0f}" if pooled else f"{r['rss']:.0f}"
        print(
            f"| {label} | {r['wall']:.2f} | {base['wall'] / r['wall']:.1f}x | {r['cpu']:.2f} | "
            f"{base['cpu'] / r['cpu']:.1f}x | {rss} | {r['lines']:,} |"
        )

if __name__ == "__main__":
    main()
