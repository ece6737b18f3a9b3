"""Every configuration hwkit saves: model shape, training recipe, presets, prepare and demo settings.

Torch-free, so the CLI derives its flags, their help and the preset table from
here without loading torch (``hwkit train -h`` stays instant), and one copy of
each default exists. Each training field carries metadata the CLI and
``hwkit.train.resume`` read:

- ``help``: the flag's help line (a field without it is not a flag);
- ``fixed``: True when the field shapes what is trained (the network, the batch
  order, the crops), so a resumed run must keep it for resuming to be exact;
  False when it only says how long, where or how fast to run;
- ``choices``, ``min``, ``max``, ``open``, ``duration``: the flag's value type.

One serialisation rule for every config: ``to_dict`` gives plain JSON values and
``from_dict`` refuses unknown keys by name (missing keys take their defaults, so
files written before a field was added still load).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hwkit import __version__
from hwkit.errors import ConfigError, OptionError

KINDS = ("prediction", "synthesis", "recognizer")
WRITERS = ("prediction", "synthesis")  # the kinds that write handwriting (the recognizer reads it)
C = TypeVar("C")


THREADS_HELP = ("CPU threads torch may use [default: torch's choice]; 1 runs faster when other work keeps a "
                "core busy.")


def _flag(default: Any, help: str, *, fixed: bool = False, **kind: Any) -> Any:
    return field(default=default, metadata={"help": help, "fixed": fixed, **kind})


class _Serialised:
    """``to_dict`` / ``from_dict`` with the one rule above."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown keys {', '.join(sorted(map(str, unknown)))}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{cls.__name__}: {exc}") from None


@dataclass
class ModelConfig(_Serialised):
    """Everything needed to rebuild a network's shape; saved in every checkpoint."""

    kind: str
    hidden: int = _flag(400, "LSTM cells per layer.", fixed=True, min=1)
    layers: int = _flag(3, "LSTM layers.", fixed=True, min=1)
    mixtures: int = _flag(20, "Gaussian mixture components of the output (M).", fixed=True, min=1)
    window_mixtures: int = _flag(10, "Gaussians of the synthesis window (K).", fixed=True, min=1)
    subsample: int = _flag(4, "Recognizer: pen points stacked into one LSTM frame.", fixed=True, min=1)
    alphabet_size: int = 0  # one-hot size incl. padding code 0 (= len(Alphabet)); synthesis and recognizer
    stroke_context: bool = _flag(False, "Writers: feed layer 1 the pen's displacement within its current and "
                                 "previous stroke (may be switched on with --init-from).", fixed=True)  # fmt: skip
    jump_table: bool = _flag(False, "Synthesis: place the pen after each lift by the character being written, its "
                             "strokes so far and the stroke context (needs --stroke-context; may be switched on "
                             "with --init-from).", fixed=True)  # fmt: skip
    word_table: bool = _flag(False, "Synthesis: at a space, place the pen after each lift also by the letters of the "
                             "word before it, as a joined-up hand goes back for its dots and bars (needs "
                             "--jump-table; may be switched on with --init-from).", fixed=True)  # fmt: skip
    window_pen: bool = _flag(False, "Synthesis: place the pen after each lift also by where it has moved since the "
                             "window came to its character, as a hand returns from its dots and bars to the next "
                             "word (needs --jump-table; may be switched on with --init-from).", fixed=True)  # fmt: skip

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        for name in ("hidden", "layers", "mixtures", "window_mixtures", "subsample"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer of at least 1, got {getattr(self, name)!r}")
        if self.kind != "prediction" and self.alphabet_size < 2:
            raise ValueError(f"a {self.kind} model needs alphabet_size >= 2 (padding plus characters)")
        if self.jump_table and (self.kind != "synthesis" or not self.stroke_context):
            raise ValueError("jump_table is for the synthesis net with stroke_context")
        if self.word_table and not self.jump_table:
            raise ValueError("word_table is part of the jump table")
        if self.window_pen and not self.jump_table:
            raise ValueError("window_pen is part of the jump table")


@dataclass
class TrainConfig(_Serialised):
    """How to train (the network's shape lives in ``ModelConfig``); saved in every checkpoint."""

    batch_size: int = _flag(32, "Lines per batch (per process under torchrun).", fixed=True, min=1)
    lr: float = _flag(1e-3, "Learning rate (may change on --resume, to lower it as a run goes on).",
                      min=0, open=True)  # fmt: skip
    optimizer: str = _flag("adam", "Adam, or Graves' centred RMSProp with momentum.", fixed=True,
                           choices=("adam", "rmsprop"))  # fmt: skip
    clip: str = _flag("norm", "graves: LSTM gradients to [-10, 10], outputs to [-100, 100]; "
                      "norm: global norm <= --max-norm.", fixed=True, choices=("graves", "norm"))  # fmt: skip
    max_norm: float = _flag(100.0, "Gradient norm limit for --clip norm (nats per line).", fixed=True,
                            min=0, open=True)  # fmt: skip
    epochs: int = _flag(20, "Passes over the train split.", min=1)
    max_steps: int | None = _flag(None, "Stop after this many optimiser steps in all.", min=1)
    time_limit: float | None = _flag(None, "Stop after this long (900, 15m, 2h; 0: no limit), validating and "
                                     "saving first.", duration=True)  # fmt: skip
    crop: int | None = _flag(None, "Prediction only: train on random windows of this many points, each from a "
                                   "stroke's start.", fixed=True, min=2)  # fmt: skip
    patience: int | None = _flag(None, "Stop after this many epochs without a better valid loss.", min=1)
    lr_decay: float | None = _flag(None, "Multiply the learning rate by this after every 2 epochs in a row "
                                   "without a better valid loss.", min=0, max=1, open=True)  # fmt: skip
    anchor: float | None = _flag(None, "With --init-from: pull toward the initial weights, adding "
                                 "anchor/2 * |w - w0|^2 to the loss (nats per line).", min=0)  # fmt: skip
    seed: int = _flag(0, "Seed for initialisation, batch order and crops.", fixed=True)
    workers: int = _flag(0, "DataLoader worker processes.", min=0)
    threads: int | None = _flag(None, THREADS_HELP, min=1)
    device: str = _flag("auto", "auto: CUDA when present, else CPU.", choices=("auto", "cpu", "cuda"))
    bf16: bool = _flag(False, "CUDA: bf16 autocast, kept only if it matches fp32 on a batch.")
    compile: bool = _flag(False, "CUDA: torch.compile, kept only if it matches eager on a batch.")
    log_every: int = _flag(10, "Steps between train records in metrics.jsonl.", min=1)
    max_bad_steps: int = _flag(5, "Non-finite steps in a row before giving up.", min=1)


# The fields that shape a network (a fine-tuned model takes them from its initial one).
MODEL_SHAPE = frozenset({"hidden", "layers", "mixtures", "window_mixtures", "subsample"})


def flag_fields() -> list[dataclasses.Field]:
    """The config fields ``hwkit train`` offers as flags, model shape first."""
    return [f for cls in (ModelConfig, TrainConfig) for f in dataclasses.fields(cls) if "help" in f.metadata]


def fixed_fields() -> frozenset[str]:
    """Fields a resumed run keeps from its checkpoint (the model's shape and the recipe's)."""
    return frozenset(f.name for f in flag_fields() if f.metadata["fixed"])


# Presets: model shape and training recipe together. ``crop`` applies to the
# prediction network only (synthesis and the recognizer need whole lines to align
# with the text). A preset's "recognizer" entry overrides its values for that kind:
# reading needs a smaller network and fewer epochs than writing.
PRESETS: dict[str, dict] = {
    # seconds on a CPU: for tests and CI, not for pictures
    "tiny": {
        "model": {"hidden": 32, "layers": 1, "mixtures": 3, "window_mixtures": 2},
        "train": {"batch_size": 8, "lr": 3e-3, "epochs": 2, "crop": 64, "log_every": 5},
    },
    # 15 minutes on a CPU (the time limit; fewer if the epochs run out first) on the demo corpus
    "demo": {
        "model": {"hidden": 256, "layers": 2, "mixtures": 20, "window_mixtures": 10},
        "train": {"batch_size": 32, "lr": 2e-3, "epochs": 30, "time_limit": 900.0, "crop": 300, "patience": 3},
        # test-split CER 1.3% after 10 epochs, 3.5 minutes on one CPU thread (BENCHMARKS.md)
        "recognizer": {"model": {"hidden": 128, "layers": 2, "subsample": 5}, "train": {"batch_size": 8, "lr": 2e-3,
                       "max_norm": 5.0, "epochs": 10, "patience": 4}},  # fmt: skip
    },
    # fine-tuning a trained model (--init-from) on a few dozen lines of one hand: the network's shape
    # comes from that model; a low rate, small batches, many short epochs, early stopping on valid
    "finetune": {
        "model": {},  # the initial model's
        "train": {"batch_size": 8, "lr": 2e-4, "epochs": 40, "patience": 4, "anchor": 10.0, "time_limit": 900.0,
                  "crop": 300},  # fmt: skip
        "recognizer": {"model": {}, "train": {"max_norm": 5.0}},  # the clip it was trained with
    },
    # the paper's sizes and optimiser (sec. 4.2 and 5); a GPU job
    "graves": {
        "model": {"hidden": 400, "layers": 3, "mixtures": 20, "window_mixtures": 10},
        "train": {
            "batch_size": 32,
            "optimizer": "rmsprop",
            "lr": 1e-4,
            "clip": "graves",
            "epochs": 100,
            "patience": 10,
        },
    },
}
PRESET_HELP = {
    "tiny": "seconds, for tests",
    "demo": "~15 min on a CPU",
    "finetune": "with --init-from, a few dozen lines of one hand",
    "graves": "the paper's sizes (GPU)",
}


def check_options(kind: str, preset: str, overrides: Mapping[str, Any]) -> None:
    """Refuse option combinations that cannot work (``OptionError``), before any work is done."""
    if kind not in KINDS:
        raise OptionError("kind", f"unknown model kind {kind!r} (choose from {', '.join(KINDS)})")
    if preset not in PRESETS:
        raise OptionError("preset", f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    given = {k: v for k, v in overrides.items() if v is not None}
    check_device_options(given)
    if kind != "prediction" and given.get("crop"):
        raise OptionError("crop", f"prediction only, cannot go with the {kind} model (it reads whole lines)")
    if kind == "recognizer" and given.get("stroke_context"):
        raise OptionError("stroke_context", "for the handwriting nets; the recognizer reads whole lines both ways")
    if given.get("jump_table") and kind != "synthesis":
        raise OptionError("jump_table", f"synthesis only: it reads the window's character (this is a {kind} model)")
    if given.get("jump_table") and not given.get("stroke_context"):
        raise OptionError("jump_table", "places the pen by the stroke context: add --stroke-context")
    for part in ("word_table", "window_pen"):
        if given.get(part) and not given.get("jump_table"):
            raise OptionError(part, "is part of the jump table: add --jump-table")
    if kind == "recognizer" and given.get("clip") == "graves":
        raise OptionError("clip", "graves clipping is for the handwriting nets; the recognizer clips by norm")
    if "max_norm" in given:
        clip = given.get("clip", preset_values(kind, preset)[1].get("clip", TrainConfig.clip))
        if clip != "norm":
            raise OptionError("max_norm", f"applies to norm clipping only (this run clips the {clip} way)")


def check_device_options(overrides: Mapping[str, Any]) -> None:
    """bf16 and compile are CUDA options: refused together with an explicit cpu device."""
    if overrides.get("device") == "cpu":
        fast = tuple(name for name in ("bf16", "compile") if overrides.get(name))
        if fast:
            raise OptionError(fast, "CUDA only, cannot go with the cpu device")


def make_configs(
    kind: str, preset: str = "demo", *, alphabet_size: int = 0, **overrides: Any
) -> tuple[ModelConfig, TrainConfig]:
    """A preset's configs with ``overrides`` applied (keys of either config; None means keep).

    A synthesis model needs ``alphabet_size``: ``len(store.alphabet)`` of the store it trains on.
    Combinations that cannot work are an ``OptionError`` (``check_options``).
    """
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)} - {"kind", "alphabet_size"}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - model_fields - train_fields
    if unknown:
        raise TypeError(f"unknown config fields: {', '.join(sorted(unknown))}")
    check_options(kind, preset, overrides)
    given = {k: v for k, v in overrides.items() if v is not None}
    model, recipe = preset_values(kind, preset)
    model.update({k: v for k, v in given.items() if k in model_fields})
    recipe.update({k: v for k, v in given.items() if k in train_fields})
    return ModelConfig(kind=kind, alphabet_size=alphabet_size, **model), TrainConfig(**recipe)


def preset_values(kind: str, preset: str) -> tuple[dict, dict]:
    """What ``preset`` sets for a ``kind`` model: (model fields, train fields)."""
    entry = PRESETS[preset]
    own = entry.get(kind, {})
    model = {**entry["model"], **own.get("model", {})}
    recipe = {k: v for k, v in {**entry["train"], **own.get("train", {})}.items() if k != "crop" or kind == "prediction"}
    if kind == "recognizer":
        recipe["clip"] = "norm"  # Graves' clipping hooks belong to the handwriting nets
    return model, recipe


def preset_table() -> str:
    """What each preset sets, as the plain-text table of ``hwkit train -h``."""
    defaults = TrainConfig().to_dict()
    rows = [("preset", "LSTM", "M/K", "batch", "lr", "optimiser (clip)", "crop", "stops after")]
    for name, kind in [(name, kind) for name in PRESETS for kind in ("prediction", "recognizer")
                       if kind == "prediction" or kind in PRESETS[name]]:  # fmt: skip
        model, recipe = preset_values(kind, name)
        recipe = {**defaults, **recipe}
        name = name if kind == "prediction" else f"  {kind}"
        stops = [f"{recipe['epochs']} epochs"]
        if recipe.get("time_limit"):
            stops.append(human_duration(recipe["time_limit"]))
        if recipe.get("patience"):
            stops.append(f"patience {recipe['patience']}")
        rows.append((
            name,
            f"{model['hidden']} x {model['layers']}" if model else "initial",
            f"{model['mixtures']}/{model['window_mixtures']}" if kind == "prediction" and model else "-",
            str(recipe["batch_size"]),
            f"{recipe['lr']:g}",
            f"{recipe['optimizer']} ({recipe['clip']})",
            str(recipe["crop"]) if recipe.get("crop") else "-",
            ", ".join(stops),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def human_duration(seconds: float) -> str:
    """900 -> '15m', 5400 -> '1h30m'."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n) or "0s"


@dataclass(frozen=True)
class PrepareParams(_Serialised):
    """Cleaning thresholds and split fractions; saved as JSON in every store (with the decisions made)."""

    min_points: int = 40
    """Lines with fewer points (after cleaning) are left out: a letter or two, nothing to learn from."""
    max_jump: float = 500.0
    """A pen-down step longer than this (raw units, about a line height in IAM-OnDB) splits its stroke."""
    stats_max_move: float = 10_000.0
    """Moves longer than this (raw units; an IAM-OnDB board is about 6,500 wide) are left out of the
    normalisation statistics: a glitch kept as a pen-up jump would otherwise set the scale of every step."""
    valid_fraction: float = 0.05
    """Share of lines for the validation split when no task lists are present."""
    test_fraction: float = 0.05
    """Share of lines for the test split when no task lists are present."""


@dataclass(frozen=True)
class DemoParams(_Serialised):
    """What a demo corpus is generated from; saved as ``DEMO.json`` beside it."""

    lines: int = 3000
    writers: int = 40
    seed: int = 0
    # Bumped whenever the same parameters come to give other lines, so a corpus on disk from an older
    # generator is made again rather than reused (2: a quarter of the words made up, see demo_text).
    generator: int = 2
    # Share of the words that start lower case to give a capital, on top of the generator's own (6.5% of
    # characters are capitals): a corpus to drill the letters a model writes worst (BENCHMARKS.md, quality).
    capitals: float = 0.0
    # Share of the words to write as a number of 1-4 digits drawn alike, on top of the generator's own (about
    # 1.4% of characters are digits, most of them years): a corpus to drill the digits (BENCHMARKS.md, quality).
    numbers: float = 0.0
    hwkit_version: str = __version__

    def __post_init__(self) -> None:
        for name in ("capitals", "numbers"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a share of words, 0 to 1 (got {getattr(self, name)})")
