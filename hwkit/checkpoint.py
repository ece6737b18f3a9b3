"""Checkpoints: one ``.pt`` file that holds everything needed to resume or sample.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``torch.load(weights_only=True)``, so loading never runs code from the file. It
therefore holds only tensors, dicts, lists, str, int, float, bool and None
(random-generator states are stored as lists). The model and training configs
travel inside as dicts, so ``model_from_checkpoint`` rebuilds the network from
the file alone, without the command line that trained it.

Keys (format ``hwkit-checkpoint`` version 1): ``format``, ``format_version``,
``model_config``, ``train_config``, ``alphabet`` (characters in code order),
``stats`` (``{"mean": [dx, dy], "std": [dx, dy]}``), ``store`` (``path``,
``fingerprint``, ``source``), ``model`` (state dict of the bare module),
``optimizer``, ``scheduler``, ``step``, ``epoch``, ``epoch_step``, ``stale_epochs``,
``rng``, ``metrics`` (list of dicts), ``best_valid`` (nats per line).
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path

from hwkit.errors import CheckpointError

FORMAT = "hwkit-checkpoint"
FORMAT_VERSION = 1
REQUIRED = ("model_config", "alphabet", "stats", "model")
# A synthesis model trained on the demo corpus, shipped with the package so that
# text-to-handwriting works before any training (weights only; pretrained/README.md).
BUNDLED = Path(__file__).parent / "pretrained" / "demo-synthesis.pt"


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` (plus the format tags) to ``path`` atomically; return the path.

    The file is written beside the target and renamed into place, so a crash or a
    full disk mid-write leaves the previous checkpoint intact under its name.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a checkpoint safely (``weights_only=True``); ``CheckpointError`` if it is not one we can use."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with warnings.catch_warnings():  # torch warns on some foreign files; the error below says it all
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch.load raises KeyError, RuntimeError, EOFError... on foreign bytes
        raise CheckpointError(f"{path}: {_why_unreadable(path, exc)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: a torch file, but not an hwkit checkpoint")
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: made by a newer hwkit (format_version {version}; this one reads {FORMAT_VERSION}); "
                "upgrade hwkit to use it"
            )
        raise CheckpointError(
            f"{path}: unsupported checkpoint format_version {version!r} (this hwkit reads {FORMAT_VERSION})"
        )
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    ckpt["loaded_from"] = str(path)
    return ckpt


def model_from_checkpoint(ckpt: dict, device="cpu"):
    """Rebuild the network a checkpoint describes, load its weights, and return it in eval mode."""
    from hwkit.models import ModelConfig, build_model

    where = ckpt.get("loaded_from", "checkpoint")
    try:
        model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{where}: weights do not fit the model config ({_first_line(exc)})") from None
    return model.to(device).eval()


def find_checkpoint(
    path: str | os.PathLike | None, models_dir: str | os.PathLike = Path("models"), kind: str | None = None
) -> Path:
    """Resolve what the user named to one checkpoint file.

    None -> the newest ``best.pt`` under ``models_dir`` (of a ``kind`` model,
    when given: a text needs a synthesis model), else the bundled demo model
    (``BUNDLED``, a synthesis model); a run folder -> its ``best.pt`` (else
    ``last.pt``); a file -> itself.
    """
    if path is None:
        models_dir = Path(models_dir)
        found = sorted(models_dir.glob("*/best.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
        for candidate in found:
            if kind is None or _kind_of(candidate) == kind:
                return candidate
        if kind in (None, "synthesis") and BUNDLED.is_file():
            return BUNDLED
        what, flag = (f"{kind} checkpoint", f" --model {kind}") if kind else ("checkpoint", "")
        raise CheckpointError(f"no {what} under {models_dir}/; run `hwkit train{flag}` first")
    path = Path(path)
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
        return load_checkpoint(path)["model_config"].get("kind")
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
