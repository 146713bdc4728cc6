"""Run configurations: TOML files validated against a schema, with ``--set`` overrides.

Every error is one line that names the file, the key and where it is, and suggests the
closest valid key: ``quickstart.toml: [optimizer] unknown key 'learning_rate'; did you mean
'lr'?``. The resolved configuration (defaults filled in) is a plain nested ``dict`` that
round-trips through TOML.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manyview.registry import did_you_mean


class ConfigError(ValueError):
    """A configuration problem; the message is one line naming the key and the fix."""


@dataclass(frozen=True)
class Field:
    """One key: its type (``int``, ``float``, ``bool``, ``str``, ``list``, ``dict``), default,
    allowed values, bounds (``below``: the maximum itself is excluded), and whether it may be
    absent (``None``). A number (or a list item) must be finite."""

    kind: type
    default: Any = None
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    below: bool = False  # the maximum itself is not allowed
    optional: bool = False
    required: bool = False
    item: type | None = None  # element type of a list


RUN = {
    "recipe": Field(str, "contrastive"),
    "seed": Field(int, 0, minimum=-(2**63), maximum=2**63 - 1),
    "steps": Field(int, 100, minimum=1),
    "batch_size": Field(int, 32, minimum=2),
    "device": Field(str, "cpu"),
    "precision": Field(str, "fp32", choices=("fp32", "bf16")),
    "compile": Field(bool, False),
    "grad_accum": Field(int, 1, minimum=1),
    "gradcache_chunk": Field(int, 0, minimum=0),
    "grad_clip": Field(float, None, minimum=0, optional=True),
    "log_every": Field(int, 10, minimum=1),
    "metrics_every": Field(int, 50, minimum=0),
    "checkpoint_every": Field(int, 50, minimum=1),
    "keep_checkpoints": Field(int, 3, minimum=1),
    "max_bad_steps": Field(int, 5, minimum=1),
    "tensorboard": Field(bool, False),
}
DATA = {
    "name": Field(str, required=True),
    "options": Field(dict, {}),
    "drop_last": Field(bool, True),
}
OPTIMIZER = {
    "name": Field(str, "adamw", choices=("adamw", "sgd", "lars")),
    "lr": Field(float, 1e-3, minimum=0),
    "weight_decay": Field(float, 0.0, minimum=0),
    "momentum": Field(float, 0.9, minimum=0, maximum=1, below=True),
    "betas": Field(list, [0.9, 0.999], item=float, minimum=0, maximum=1, below=True),
    "nesterov": Field(bool, False),
    "trust_coefficient": Field(float, 0.001, minimum=0),
}
SCHEDULE = {
    "kind": Field(str, "cosine", choices=("cosine", "constant", "linear")),
    "warmup_steps": Field(int, 0, minimum=0),
    "min_lr_ratio": Field(float, 0.0, minimum=0, maximum=1),
}
MODALITY = {
    "encoder": Field(str, required=True),
    "encoder_options": Field(dict, {}),
    "views": Field(list, [], item=dict),
    "num_views": Field(int, 1, minimum=1),
    "projector_dim": Field(int, 0, minimum=0),
    "projector_hidden": Field(int, 0, minimum=0),
}
VIEW = {"name": Field(str, required=True), "options": Field(dict, {})}
LOSS = {
    "name": Field(str, required=True),
    "weight": Field(float, 1.0),
    "options": Field(dict, {}),
}
TEACHER = {
    "name": Field(str, required=True),
    "options": Field(dict, {}),
}
DISTRIBUTED = {
    "gather": Field(str, "local_anchors", choices=("local_anchors", "full", "none")),
    "backend": Field(str, "auto", choices=("auto", "gloo", "nccl")),
}

SECTIONS: dict[str, dict[str, Field]] = {
    "run": RUN,
    "data": DATA,
    "optimizer": OPTIMIZER,
    "schedule": SCHEDULE,
    "teacher": TEACHER,
    "distributed": DISTRIBUTED,
}
TOP_LEVEL = (*SECTIONS, "modalities", "losses", "recipe_options")

# Keys that other training tools have and manyview does not: refused with the reason, not as
# unknown keys (a suggestion of a close name would be wrong here).
UNSUPPORTED = {
    "run": {
        "num_workers": "is not supported (data is fetched in the training process); remove the key",
    },
}


# Names users bring from other tools, mapped to ours.
ALIASES = {
    "learning_rate": "lr",
    "wd": "weight_decay",
    "epochs": "steps",
    "max_steps": "steps",
    "bs": "batch_size",
    "batch": "batch_size",
    "warmup": "warmup_steps",
    "clip_grad": "grad_clip",
    "gradient_clip": "grad_clip",
    "accumulate": "grad_accum",
    "dataset": "data",
    "loss": "losses",
    "model": "modalities",
}


def _did_you_mean(word: str, choices: Any) -> str:
    """:func:`manyview.did_you_mean`, trying the name's :data:`ALIASES` entry first."""
    choices, alias = list(choices), ALIASES.get(word)
    return did_you_mean(alias, [alias]) if alias in choices else did_you_mean(word, choices)


def _type_name(value: Any) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def _number(x: float | None) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where} {message}")

    def value(self, where: str, key: str, field: Field, value: Any) -> Any:
        if value is None:
            if field.optional:
                return None
            raise self.fail(where, f"{key} must not be empty")
        kind = field.kind
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            wanted = {
                int: "an integer",
                float: "a number",
                bool: "true or false",
                str: "a string",
                list: "a list",
                dict: "a table",
            }[kind]
            raise self.fail(where, f"{key} must be {wanted}, got {value!r} ({_type_name(value)})")
        if field.choices is not None and value not in field.choices:
            options = ", ".join(repr(c) for c in field.choices)
            raise self.fail(
                where,
                f"{key} = {value!r} is not one of {options}{_did_you_mean(str(value), field.choices)}",
            )
        if kind is list and field.item is not None:
            for i, item in enumerate(value):
                if field.item is float and isinstance(item, int) and not isinstance(item, bool):
                    value[i] = float(item)
                elif not isinstance(item, field.item):
                    raise self.fail(
                        where, f"{key}[{i}] must be {_type_name(field.item())}, got {item!r}"
                    )
                if field.item in (int, float):
                    self.bounds(where, f"{key}[{i}]", field, value[i])
        elif kind in (int, float):
            self.bounds(where, key, field, value)
        return value

    def bounds(self, where: str, key: str, field: Field, value: float) -> None:
        """A number: finite, and within the field's bounds."""
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(where, f"{key} must be a finite number, got {value!r}")
        low, high = field.minimum, field.maximum
        if (low is not None and value < low) or (
            high is not None and (value >= high if field.below else value > high)
        ):
            if high is None:
                wanted = f">= {_number(low)}"
            else:
                wanted = f"in [{_number(low)}, {_number(high)}{')' if field.below else ']'}"
            raise self.fail(where, f"{key} must be {wanted}, got {value!r}")

    def table(self, where: str, data: Any, schema: Mapping[str, Field]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(where, f"must be a table, got {data!r} ({_type_name(data)})")
        for key in data:
            if key not in schema:
                raise self.fail(
                    where,
                    f"unknown key {key!r}{_did_you_mean(key, schema) or '; allowed: ' + ', '.join(schema)}",
                )
        out = {}
        for key, field in schema.items():
            if key in data:
                out[key] = self.value(where, key, field, data[key])
            elif field.required:
                raise self.fail(where, f"needs {key} = ...")
            else:
                default = field.default
                out[key] = type(default)(default) if isinstance(default, list | dict) else default
        return out


def validate(raw: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """Check ``raw`` (parsed TOML) against the schema; return it with defaults filled in."""
    check = _Checker(source)
    for key in raw:
        if key not in TOP_LEVEL:
            raise check.fail(
                "top level:",
                f"unknown table {key!r}{_did_you_mean(key, TOP_LEVEL) or '; allowed: ' + ', '.join(TOP_LEVEL)}",
            )
    if "data" not in raw:
        raise check.fail("top level:", 'needs a [data] table with name = "<dataset>"')
    out: dict[str, Any] = {}
    for section, schema in SECTIONS.items():
        if section == "teacher" and section not in raw:
            out[section] = None
            continue
        table = raw.get(section, {})
        for key, why in UNSUPPORTED.get(section, {}).items():
            if isinstance(table, dict) and key in table:
                raise check.fail(f"[{section}]", f"{key} {why}")
        out[section] = check.table(f"[{section}]", table, schema)
    device = out["run"]["device"]
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", device):
        hint = "; did you mean 'cuda'?" if device.lower() in ("gpu", "cuda", "nvidia") else ""
        raise check.fail(
            "[run]", f"device = {device!r} is not 'cpu', 'cuda', 'cuda:N' or 'mps'{hint}"
        )
    betas = out["optimizer"]["betas"]
    if len(betas) != 2:
        raise check.fail("[optimizer]", f"betas must be two numbers, got {betas!r}")
    modalities = raw.get("modalities", {})
    if not isinstance(modalities, dict):
        raise check.fail("[modalities]", "must be a table of [modalities.<name>] tables")
    out["modalities"] = {}
    for name, table in modalities.items():
        where = f"[modalities.{name}]"
        mod = check.table(where, table, MODALITY)
        views = []
        for i, view in enumerate(mod["views"]):
            views.append(check.table(f"{where} views[{i}]", view, VIEW))
        mod["views"] = views
        out["modalities"][name] = mod
    losses = raw.get("losses", [])
    if not isinstance(losses, list):
        raise check.fail("top level:", 'losses must be [[losses]] tables with name = "<loss>"')
    out["losses"] = [check.table(f"[[losses]] #{i + 1}", t, LOSS) for i, t in enumerate(losses)]
    extra = raw.get("recipe_options", {})
    if not isinstance(extra, dict):
        raise check.fail("[recipe_options]", "must be a table")
    out["recipe_options"] = dict(extra)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=c"`` -> (["a", "b"], value); the value is read as TOML, else as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set optimizer.lr=0.01")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return [part.strip() for part in key.split(".")], value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to a raw (parsed, not yet validated) configuration."""
    for text in overrides:
        path, value = parse_override(text)
        node: Any = raw
        for i, part in enumerate(path[:-1]):
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f"--set {text!r}: {'.'.join(path[: i + 1])} is not an index of a list of {len(node)}"
                    )
                node = node[int(part)]
            else:
                node = node.setdefault(part, {})
            if not isinstance(node, dict | list):
                raise ConfigError(f"--set {text!r}: {'.'.join(path[: i + 1])} is not a table")
        last = path[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ConfigError(
                    f"--set {text!r}: {last!r} is not an index of a list of {len(node)}"
                )
            node[int(last)] = value
        else:
            node[last] = value
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read, override and validate a TOML configuration file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r}); "
            "save the configuration as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the configuration ({exc.strerror or exc})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from None
    return validate(apply_overrides(raw, list(overrides or [])), source=path.name)


def dump_config(config: Mapping[str, Any]) -> str:
    """The resolved configuration as TOML (``None`` values are left out)."""
    import tomli_w

    def clean(obj: Any) -> Any:
        if isinstance(obj, Mapping):
            return {k: clean(v) for k, v in obj.items() if v is not None}
        if isinstance(obj, list | tuple):
            return [clean(v) for v in obj]
        return obj

    return tomli_w.dumps(clean(config))
