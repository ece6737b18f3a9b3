"""Where things live in a checkout: the defaults that let every command run with no paths given.

All relative to the working folder, so a project folder is self-contained:
``data/`` raw corpora, ``cache/`` prepared stores, ``models/`` runs, ``samples/`` output.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from hwkit.errors import StoreError

CACHE_DIR = Path("cache")
DATA_DIR = Path("data")
MODELS_DIR = Path("models")
SAMPLES_DIR = Path("samples")
PREFERRED_STORES = ("iamondb.h5", "demo.h5")


def default_store() -> Path:
    """The real corpus when prepared, else the demo, else the newest store in ``cache/``."""
    for name in PREFERRED_STORES:
        if (CACHE_DIR / name).is_file():
            return CACHE_DIR / name
    found = sorted(CACHE_DIR.glob("*.h5"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not found:
        raise StoreError(f"{CACHE_DIR}/: no store found (run `hwkit prepare` first, or name one)")
    return found[0]


def timestamp() -> str:
    """Local date and time as run folders and sample files are named: 20240101-120000."""
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
