"""Click options made from the config fields' metadata (``hwkit.config``): one definition per flag."""

from __future__ import annotations

import dataclasses
import re

import click

from hwkit import config as cfg


class Duration(click.ParamType):
    """'900', '900s', '15m', '2h' or '1h30m' -> seconds."""

    name = "duration"

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        text = value.strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return float(text)
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", text)
        if not parts or "".join(n + u for n, u in parts) != text:
            self.fail(f"{value!r} is not a duration like 900, 15m, 2h or 1h30m", param, ctx)
        return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def _config_option(field: dataclasses.Field):
    """A click option for one config field, typed and documented by the field's metadata."""
    meta, flag = field.metadata, "--" + field.name.replace("_", "-")
    in_preset = any(field.name in values for kind in cfg.KINDS for name in cfg.PRESETS
                    for values in cfg.preset_values(kind, name))  # fmt: skip
    # a default no preset changes is shown (and only ever used through the config: just explicit flags are passed)
    shown = {} if in_preset or field.default is None or field.default is False else {"default": field.default, "show_default": True}
    bounds = {"min": meta.get("min"), "max": meta.get("max"), "min_open": meta.get("open", False),
              "max_open": meta.get("open", False)}  # fmt: skip
    if "bool" in str(field.type):
        return click.option(f"{flag}/--no-{flag[2:]}", default=None, help=meta["help"])
    if "choices" in meta:
        kind = click.Choice(meta["choices"])
    elif meta.get("duration"):
        kind = Duration()
    elif bounds["min"] is None and bounds["max"] is None:
        kind = int if "int" in str(field.type) else float
    elif "int" in str(field.type):
        kind = click.IntRange(min=bounds["min"], max=bounds["max"])
    else:
        kind = click.FloatRange(**bounds)
    return click.option(flag, type=kind, help=meta["help"], **shown)


def config_options(command):
    """Add one option per config field that ``hwkit.config.flag_fields`` offers."""
    for field in reversed(cfg.flag_fields()):
        command = _config_option(field)(command)
    return command
