"""YAML configs validated into typed objects (pydantic models), with command-line overrides.

A config argument is either a path to a YAML file or the name of a preset shipped in the package's
``augrgb/configs/`` folder (``i3d_rgb_25fps_16`` means ``augrgb/configs/i3d_rgb_25fps_16.yaml``).
Precedence: model defaults < YAML file < explicit command-line options < ``--set`` overrides.
:func:`load_config` is the one loader every command uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from augrgb.core.errors import InputError

T = TypeVar("T", bound=BaseModel)

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"
"""The presets, shipped inside the package (package data) so any install finds them."""


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A YAML file as given, or the preset of that name in ``augrgb/configs/`` (a folder named like a preset in the
    working directory does not hide it)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix in (".yaml", ".yml"):
        raise InputError(path, "config file not found")
    preset = PRESET_DIR / f"{name_or_path}.yaml"
    if not preset.is_file():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise InputError(name_or_path, f"no such config file or preset (presets: {', '.join(known) or 'none'})")
    return preset


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a one-line error for unreadable or non-mapping files."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, f"cannot read YAML ({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text (byte {exc.start}); save the config as UTF-8") from None
    except RecursionError:
        raise InputError(path, "YAML nested too deeply to be a config") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(path, "config must be a YAML mapping of option: value")
    return data


def load_config(model: type[T], source: str | Path | None = None, overrides: Mapping[str, Any] | None = None, *,
                sets: Mapping[str, Any] | None = None, section: str | None = None, note: str | None = None) -> T:
    """Build ``model`` from defaults, then the YAML ``source`` (preset name or path; optionally one ``section`` of
    it), then ``overrides`` (dotted keys; ``None`` values skipped, so argparse options left unset do not clobber
    the file), then ``sets`` (dotted keys from ``--set KEY=VALUE``, applied as given, null included).

    A field holding a preset name (``dataset: synth``) that a dotted key reaches into is read from its preset
    first. Unknown keys and wrong types are one error naming the file (with ``note`` when anything was
    overridden) and the fields.
    """
    data: dict[str, Any] = {}
    origin = "command line"
    if source is not None:
        path = resolve_config_path(source)
        origin = str(path)
        data = read_yaml(path)
        if section is not None:
            data = data.get(section, {}) or {}
            if not isinstance(data, dict):
                raise InputError(path, f"section '{section}' must be a mapping")
    changes = {k: v for k, v in (overrides or {}).items() if v is not None} | dict(sets or {})
    for key, value in changes.items():
        parent, dot, _ = key.partition(".")
        if dot and isinstance(data.get(parent), str):
            data[parent] = read_yaml(resolve_config_path(data[parent]))
        set_dotted(data, key, value)
    if note and changes and source is not None:
        origin = f"{origin} ({note})"
    return validate_config(model, data, origin)


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``--set KEY=VALUE`` items -> ``{dotted key: YAML value}``."""
    values = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set {item}", "expected KEY=VALUE, e.g. training.lr=1e-4")
        try:
            values[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise InputError(f"--set {item}", "value is not valid YAML") from None
    return values


def validate_config(model: type[T], data: Mapping[str, Any], origin: str | Path) -> T:
    """``model`` from a mapping; unknown keys and wrong types are one error naming ``origin`` and the fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise InputError(origin, f"invalid config ({problems})") from None


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for ``key="a.b"``, creating mappings on the way (for overrides)."""
    *parents, last = key.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value

