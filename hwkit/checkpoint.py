"""Checkpoints: one ``.pt`` file that holds everything needed to sample, evaluate or resume.

``Checkpoint`` is the one owner of that file. It is saved as a plain dict with
``torch.save`` and read back with ``torch.load(weights_only=True)``, so loading
never runs code from the file; it therefore holds only tensors, dicts, lists,
str, int, float, bool and None (random-generator states are stored as lists).
The configs travel inside as dicts, so ``Checkpoint.build_model`` rebuilds the
network from the file alone, without the command line that trained it.

File keys (format ``hwkit-checkpoint`` version 1): ``format``, ``format_version``,
``model_config``, ``train_config``, ``alphabet`` (characters in code order),
``stats`` (``{"mean": [dx, dy], "std": [dx, dy]}``), ``store`` (``path``,
``fingerprint``, ``source``), ``model`` (state dict of the bare module), ``step``,
``epoch``, ``best_valid`` (nats per line), ``metrics`` (list of dicts), optionally
``hands`` and ``hand_thresholds`` (the house hands, see ``Checkpoint.hands``), and for a resumable run
``optimizer``, ``rng``, ``epoch_step``, ``stale_epochs``. Files from before this
class may carry a ``scheduler`` key that was never used: it is ignored.
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwkit.alphabet import Alphabet
from hwkit.config import ModelConfig, TrainConfig
from hwkit.errors import CheckpointError, HwkitError, StoreError
from hwkit.files import atomic_path

FORMAT = "hwkit-checkpoint"
FORMAT_VERSION = 1
REQUIRED = ("model_config", "alphabet", "stats", "model")
_KEYS = {"format", "format_version", *REQUIRED, "train_config", "store", "step", "epoch", "best_valid", "metrics",
         "optimizer", "rng", "epoch_step", "stale_epochs", "anchor", "init_from", "hands", "hand_thresholds"}  # fmt: skip
_LEGACY = {"scheduler"}  # written (always None) before the Checkpoint class; ignored
# A synthesis model trained on the demo corpus, shipped with the package so that
# text-to-handwriting works before any training (weights only; pretrained/README.md).
BUNDLED = Path(__file__).parent / "pretrained" / "demo-synthesis.pt"
# Its reader: a recognizer trained on a demo drill of capitals and numbers (demo test CER about 0.4%) that
# chooses among the bundled model's tries (and those of models trained on any demo store without a reader of
# its own), and a ready ``hwkit read`` for demo-corpus ink.
BUNDLED_READER = Path(__file__).parent / "pretrained" / "demo-recognizer.pt"
# A second recognizer, trained on other demo writers and texts than either of those saw (test CER about
# 0.4% on the demo store, digits and capitals as well as lower case): ``hwkit evaluate``'s judge on
# demo-corpus stores, so that the reader which chose among a model's tries is not also the one that grades them.
BUNDLED_JUDGE = Path(__file__).parent / "pretrained" / "demo-judge.pt"


@dataclass
class ResumeState:
    """What only ``--resume`` needs: the optimiser, the random generators, the place inside an epoch."""

    optimizer: dict
    rng: dict
    epoch_step: int = 0
    stale_epochs: int = 0
    anchor: dict | None = None  # the initial weights a fine-tuning run is pulled toward (``TrainConfig.anchor``)


@dataclass
class Checkpoint:
    """A trained network and what it needs to be used: configs, alphabet, normalisation, data provenance.

    ``stats`` is ``{"mean": [dx, dy], "std": [dx, dy]}`` of the train split it learnt
    from (the units samples come back in); ``store`` is ``Store.reference()`` of that
    store. ``resume`` is None for weights-only files such as the bundled model.
    """

    model_config: ModelConfig
    alphabet: Alphabet
    stats: dict[str, list[float]]
    weights: dict[str, Any]
    train_config: TrainConfig | None = None
    store: dict[str, str] | None = None
    step: int = 0
    epoch: int = 0
    best_valid: float = math.inf
    metrics: list[dict] = field(default_factory=list)
    resume: ResumeState | None = None
    init_from: dict | None = None  # fine-tuned: the initial model's path, weights_sha256 and store
    # House hands: real lines the model writes most legibly, carried so that ``--style auto`` primes with
    # one of them wherever the model goes (``hwkit.legibility.house_hands``). Each is a dict: ``line_id``,
    # ``writer_id``, ``text``, ``offsets`` (an (n, 3) float32 tensor, raw pen units), ``cer`` (as ranked).
    hands: list[dict] = field(default_factory=list)
    # With the house hands: per style feature (``handstyle.FEATURES``), the difference between a line's halves
    # that 95% of the store's train lines stay within. Among tries read equally well, the chooser keeps a draw
    # within them (one hand per line). Empty: no preference.
    hand_thresholds: list[float] = field(default_factory=list)
    path: Path | None = None  # where it was loaded from

    @property
    def kind(self) -> str:
        return self.model_config.kind

    @property
    def name(self) -> str:
        """How errors name it: its path, or 'checkpoint' when it was never on disk."""
        return str(self.path) if self.path is not None else "checkpoint"

    # -- files

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: Any = "cpu") -> Checkpoint:
        """Read a checkpoint safely (``weights_only=True``); ``CheckpointError`` if it is not one we can use."""
        import torch

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint")
        try:
            with warnings.catch_warnings():  # torch warns on some foreign files; the error below says it all
                warnings.simplefilter("ignore")
                data = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # torch.load raises KeyError, RuntimeError, EOFError... on foreign bytes
            raise CheckpointError(f"{path}: {_why_unreadable(path, exc)}") from None
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: Any, path: Path | None = None) -> Checkpoint:
        where = str(path) if path is not None else "checkpoint"
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"{where}: a torch file, but not an hwkit checkpoint")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            if not isinstance(version, int):
                raise CheckpointError(f"{where}: format_version must be a whole number, got {version!r}")
            if version > FORMAT_VERSION:
                raise CheckpointError(
                    f"{where}: made by a newer hwkit (format_version {version}; this one reads {FORMAT_VERSION}); "
                    "upgrade hwkit to use it"
                )
            raise CheckpointError(
                f"{where}: unsupported checkpoint format_version {version!r} (this hwkit reads {FORMAT_VERSION})"
            )
        missing = [k for k in REQUIRED if k not in data]
        if missing:
            raise CheckpointError(f"{where}: checkpoint lacks {', '.join(missing)}")
        unknown = set(data) - _KEYS - _LEGACY
        if unknown:
            raise CheckpointError(f"{where}: unknown checkpoint keys {', '.join(sorted(map(str, unknown)))}")
        try:
            model_config = ModelConfig.from_dict(data["model_config"])
            train_config = TrainConfig.from_dict(data["train_config"]) if data.get("train_config") else None
            alphabet = Alphabet(data["alphabet"])
        except (HwkitError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: {exc}") from None
        for key in ("step", "epoch", "epoch_step", "stale_epochs"):
            if not isinstance(data.get(key, 0), int):
                raise CheckpointError(f"{where}: {key} must be a whole number, got {data[key]!r}")
        if not isinstance(data["model"], dict):
            raise CheckpointError(f"{where}: its weights are not a state dict")
        kinds = {"store": dict, "init_from": dict, "train_config": dict, "metrics": list, "optimizer": dict,
                 "rng": dict, "anchor": dict}  # fmt: skip
        for key, kind in kinds.items():
            if data.get(key) is not None and not isinstance(data[key], kind):
                raise CheckpointError(f"{where}: {key} must be a {kind.__name__}, got {type(data[key]).__name__}")
        if not all(isinstance(m, dict) for m in data.get("metrics", [])):
            raise CheckpointError(f"{where}: metrics must be records (dicts)")
        if not isinstance(data.get("best_valid", 0.0), (int, float)):
            raise CheckpointError(f"{where}: best_valid must be a number, got {data['best_valid']!r}")
        anchor = data.get("anchor") or {}
        if anchor and {k: tuple(v.shape) for k, v in anchor.items() if hasattr(v, "shape")} != {
                k: tuple(v.shape) for k, v in data["model"].items() if k in anchor}:  # fmt: skip
            raise CheckpointError(f"{where}: its initial weights (anchor) do not match its weights")
        damaged = [name for name, t in data["model"].items()
                   if not hasattr(t, "is_floating_point") or t.is_floating_point() and not bool(t.isfinite().all())]  # fmt: skip
        if damaged:
            raise CheckpointError(f"{where}: damaged weights (not numbers, or NaN or infinite) in {damaged[0]}")
        hands = _checked_hands(data.get("hands", []), where)
        thresholds = data.get("hand_thresholds", [])
        if not (isinstance(thresholds, list) and (thresholds == [] or len(thresholds) == 3)
                and all(isinstance(t, (int, float)) and math.isfinite(t) and t > 0 for t in thresholds)):  # fmt: skip
            raise CheckpointError(f"{where}: hand_thresholds must be three positive numbers (or none)")
        resume = None
        if "optimizer" in data and "rng" in data:
            resume = ResumeState(data["optimizer"], data["rng"], data.get("epoch_step", 0), data.get("stale_epochs", 0),
                                 data.get("anchor"))  # fmt: skip
        return cls(
            model_config=model_config,
            alphabet=alphabet,
            stats=_checked_stats(data["stats"], where),
            weights=data["model"],
            train_config=train_config,
            store=data.get("store") or None,
            step=data.get("step", 0),
            epoch=data.get("epoch", 0),
            best_valid=data.get("best_valid", math.inf),
            metrics=list(data.get("metrics", [])),
            resume=resume,
            init_from=data.get("init_from"),
            hands=hands,
            hand_thresholds=[float(t) for t in thresholds],
            path=path,
        )

    def to_dict(self) -> dict:
        """The file's dict (see the module docstring)."""
        data = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_config": self.model_config.to_dict(),
            "alphabet": self.alphabet.chars,
            "stats": self.stats,
            "model": self.weights,
            "step": self.step,
            "epoch": self.epoch,
            "best_valid": self.best_valid,
            "metrics": self.metrics,
        }
        if self.train_config is not None:
            data["train_config"] = self.train_config.to_dict()
        if self.store is not None:
            data["store"] = dict(self.store)
        if self.init_from is not None:
            data["init_from"] = dict(self.init_from)
        if self.hands:
            data["hands"] = [dict(hand) for hand in self.hands]
        if self.hand_thresholds:
            data["hand_thresholds"] = list(self.hand_thresholds)
        if self.resume is not None:
            data.update(optimizer=self.resume.optimizer, rng=self.resume.rng, epoch_step=self.resume.epoch_step,
                        stale_epochs=self.resume.stale_epochs)  # fmt: skip
            if self.resume.anchor is not None:
                data["anchor"] = self.resume.anchor
        return data

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically: a crash or a full disk mid-write leaves the previous file intact under its name."""
        import torch

        path = Path(path)
        try:
            with atomic_path(path) as tmp:
                torch.save(self.to_dict(), tmp)
        except RuntimeError as exc:  # torch's zip writer reports a full disk as "[enforce fail ...] file write failed"
            raise CheckpointError(f"{path}: could not be written ({_first_line(exc)}); is the disk full?") from None
        return path

    def weights_only(self) -> Checkpoint:
        """The same model without what only resuming needs (optimiser, random state, train records)."""
        valid = [m for m in self.metrics if m.get("kind") == "valid"]
        return Checkpoint(self.model_config, self.alphabet, self.stats, self.weights, self.train_config, self.store,
                          self.step, self.epoch, self.best_valid, valid, init_from=self.init_from,
                          hands=self.hands, hand_thresholds=self.hand_thresholds)  # fmt: skip

    def weights_sha256(self) -> str:
        """A fingerprint of the weights alone: which model a fine-tuned one started from."""
        import hashlib

        digest = hashlib.sha256()
        for name in sorted(self.weights):
            digest.update(name.encode())
            digest.update(self.weights[name].detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    # -- use

    def build_model(self, device: Any = "cpu"):
        """Rebuild the network, load its weights, and return it in eval mode on ``device``."""
        from hwkit.models import build_model

        try:
            model = build_model(self.model_config)
            model.load_state_dict(self.weights)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{self.name}: weights do not fit the model config ({_first_line(exc)})") from None
        return model.to(device).eval()


def _checked_stats(stats: Any, where: str) -> dict[str, list[float]]:
    try:
        mean = [float(v) for v in stats["mean"]]
        std = [float(v) for v in stats["std"]]
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{where}: stats must hold mean and std of dx, dy") from None
    if len(mean) != 2 or len(std) != 2 or not all(map(math.isfinite, mean + std)) or min(std) <= 0:
        raise CheckpointError(f"{where}: stats must be two finite means and two positive std devs")
    return {"mean": mean, "std": std}


def _checked_hands(hands: Any, where: str) -> list[dict]:
    if not isinstance(hands, list):
        raise CheckpointError(f"{where}: hands must be a list, got {type(hands).__name__}")
    for k, hand in enumerate(hands):
        offsets = hand.get("offsets") if isinstance(hand, dict) else None
        if (not hasattr(offsets, "shape") or offsets.ndim != 2 or offsets.shape[1] != 3 or offsets.shape[0] < 2
                or not offsets.is_floating_point() or not bool(offsets.isfinite().all())
                or not isinstance(hand.get("text"), str) or not isinstance(hand.get("line_id"), str)):  # fmt: skip
            raise CheckpointError(f"{where}: hand {k} is not a line id, a text and (n, 3) finite offsets")
    return hands


def find_store(checkpoint: Checkpoint, hint: str | os.PathLike | None = None) -> Path:
    """The store a checkpoint was trained on, as a path that exists from here.

    ``hint`` (a path the user gave) wins and must exist. Otherwise the recorded
    path as given (relative to the working folder), else that relative path under
    each folder above the checkpoint (the checkout it was trained in, wherever it
    is now). A candidate whose content fingerprint matches wins; else the first
    that exists. ``StoreError`` when none does.
    """
    from hwkit.store import Store

    if hint is not None:
        if not Path(hint).is_file():
            raise StoreError(f"{hint}: no such file")
        return Path(hint)
    recorded = (checkpoint.store or {}).get("path")
    if not recorded:
        raise StoreError(f"{checkpoint.name}: records no store; name one (--store FILE)")
    candidates = [Path(recorded)]
    if not candidates[0].is_absolute() and checkpoint.path is not None:
        candidates += [folder / recorded for folder in checkpoint.path.resolve().parents]
    existing = list(dict.fromkeys(c for c in candidates if c.is_file()))
    if not existing:
        raise StoreError(f"{checkpoint.name}: its store {recorded} is not found (from here); name the store "
                         f"(--store FILE, e.g. --store cache/demo.h5 for a bundled model)")
    fingerprint = (checkpoint.store or {}).get("fingerprint")
    for candidate in existing:
        try:
            if fingerprint and Store(candidate).fingerprint == fingerprint:
                return candidate
        except HwkitError:
            continue
    return existing[0]


def find_checkpoint(
    path: str | os.PathLike | None,
    models_dir: str | os.PathLike = Path("models"),
    kind: str | tuple[str, ...] | None = None,
) -> Path:
    """Resolve what the user named to one checkpoint file.

    None -> the newest ``best.pt`` under ``models_dir`` (of ``kind``, one kind or
    several, when given: a text needs a synthesis model), else the bundled demo
    model of that kind (``BUNDLED`` writes, ``BUNDLED_READER`` reads); a run
    folder -> its ``best.pt`` (else ``last.pt``); a file -> itself; ``bundled`` (where no such file or
    folder is) -> ``BUNDLED`` (``BUNDLED_READER`` for ``kind`` recognizer), so that a command given in the
    README works outside the checkout too.
    """
    if path is None:
        kinds = (kind,) if isinstance(kind, str) else kind
        models_dir = Path(models_dir)
        found = sorted(models_dir.glob("*/best.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
        for candidate in found:
            if kinds is None or _kind_of(candidate) in kinds:
                return candidate
        for bundled, its_kind in ((BUNDLED, "synthesis"), (BUNDLED_READER, "recognizer")):
            if (kinds is None and its_kind == "synthesis" or kinds is not None and its_kind in kinds) \
                    and bundled.is_file():  # fmt: skip
                return bundled
        what = f"{' or '.join(kinds)} checkpoint" if kinds else "checkpoint"
        flag = f" --model {kinds[0]}" if kinds and len(kinds) == 1 else ""
        raise CheckpointError(f"no {what} under {models_dir}/; run `hwkit train{flag}` first")
    path = Path(path)
    if str(path) == "bundled" and not path.exists():  # the bundled model by name, from any folder
        return BUNDLED_READER if kind == "recognizer" else BUNDLED
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: run folder holds neither best.pt nor last.pt")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    return path


def _kind_of(path: Path) -> str | None:
    """The model kind a checkpoint holds; None when it cannot be read."""
    try:
        return Checkpoint.load(path).kind
    except CheckpointError:
        return None


def _why_unreadable(path: Path, exc: BaseException) -> str:
    """A plain reason why ``torch.load`` could not read ``path``, judged from its first bytes and the error.

    torch's own messages (a byte value, a miniz error, advice about ``weights_only``) mean
    nothing to someone who named the wrong file.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as err:
        return f"cannot be read ({err.strerror or type(err).__name__})"
    if not head:
        return "empty file, not a checkpoint file"
    if head.startswith(b"PK\x03\x04"):  # torch's zip format
        if not zipfile.is_zipfile(path):
            return "truncated (the torch file ends early; was it copied or saved completely?)"
        if isinstance(exc, pickle.UnpicklingError):
            return "a torch file that holds objects a safe load refuses (not written by hwkit)"
        return "damaged torch file (its contents do not read back)"
    if head[:1] == b"\x80":  # a pickle: torch's legacy format, or a plain pickle
        if isinstance(exc, EOFError):
            return "truncated (the file ends early; was it copied or saved completely?)"
        return "not a torch checkpoint file (a plain Python pickle)"
    if b"\0" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as err:
            looks_like_text = err.start >= len(head) - 3  # a character cut at the 512-byte mark
        else:
            looks_like_text = True
        if looks_like_text:
            return "not a checkpoint file (it holds text)"
    return "not a torch checkpoint file"


def _first_line(exc: BaseException, limit: int = 120) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
