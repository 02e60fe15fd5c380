"""Class-name lists as datasets ship them, and the shared number parsing of annotation readers."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from augrgb.core.errors import InputError

_CHARADES_ID = re.compile(r"^c(\d+)$")
_INTEGER = re.compile(r"^[+-]?\d+$")

ClassesArg = Sequence[str] | str | Path | None
"""A class list given as names, as the path of a class-list file, or not at all."""


def _class_lines(path: Path) -> list[tuple[int, str | None, str]]:
    """(line number, leading id or None, name) for each non-empty line of a class-list file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot read class list ({err.__class__.__name__}: {err})") from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise InputError(path, "class list is empty")
    split = [line.split(maxsplit=1) for _, line in lines]
    charades = all(len(p) == 2 and _CHARADES_ID.match(p[0]) for p in split)
    numbered = all(len(p) == 2 and _INTEGER.match(p[0]) for p in split)
    if not (charades or numbered):
        return [(n, None, line) for n, line in lines]
    for index, ((n, _), parts) in enumerate(zip(lines, split)):
        if charades and int(_CHARADES_ID.match(parts[0]).group(1)) != index:
            raise InputError(f"{path}:{n}", f"class id {parts[0]} is not c{index:03d} (ids must follow line order)")
    return [(n, parts[0], parts[1].strip()) for (n, _), parts in zip(lines, split)]


def read_class_list(path: str | Path) -> list[str]:
    """Class names, index = line order, from a class-list file.

    Accepts one name per line (``classes.txt``), ``c000 Holding some clothes`` (Charades; the
    number must equal the line's index) and ``7 BaseballPitch`` (THUMOS14 ``detclasslist.txt``,
    MultiTHUMOS ``class_list.txt``): a leading id is dropped when every line has one.
    """
    path = Path(path)
    seen: dict[str, int] = {}
    for n, _, name in _class_lines(path):
        if name in seen:
            raise InputError(f"{path}:{n}", f"class {name!r} repeats line {seen[name]}")
        seen[name] = n
    return list(seen)


def read_class_ids(path: str | Path) -> dict[int, int]:
    """For ``<id> <name>`` lists (THUMOS14 ``detclasslist.txt``): dataset class id -> line index."""
    path = Path(path)
    read_class_list(path)
    ids: dict[int, int] = {}
    for index, (n, token, _) in enumerate(_class_lines(path)):
        if token is None or not _INTEGER.match(token):
            raise InputError(f"{path}:{n}", "no numeric class id at the start of the line")
        if int(token) in ids:
            raise InputError(f"{path}:{n}", f"class id {token} repeats")
        ids[int(token)] = index
    return ids


def resolve_classes(classes: ClassesArg) -> list[str] | None:
    """Names from a list or a class-list file; ``None`` stays ``None``."""
    if classes is None:
        return None
    if isinstance(classes, (str, Path)):
        return read_class_list(classes)
    return [str(c) for c in classes]


def parse_float(text: object, where: str, what: str) -> float:
    """A finite float, else :class:`InputError` naming ``where`` (file:line) and ``what``."""
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(where, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(where, f"{what} {text!r} is not finite")
    return value


MAX_CLASSES = 100_000  # without a class list, labels name classes by number: more than this is a mistake, not a dataset


def parse_label(text: object, where: str, base: int, num_classes: int | None) -> int:
    """A class id written as an integer (``3`` or ``3.0``), returned 0-based."""
    value = parse_float(text, where, "class")
    if value != int(value):
        raise InputError(where, f"class {text!r} is not an integer")
    label = int(value) - base
    if num_classes is None and label >= MAX_CLASSES:
        raise InputError(where, f"class {int(value)} is beyond the limit of {MAX_CLASSES} classes without a class list "
                                "(pass the classes or num_classes)")
    if label < 0 or (num_classes is not None and label >= num_classes):
        top = f"..{num_classes - 1 + base}" if num_classes is not None else " or more"
        raise InputError(where, f"class {int(value)} outside {base}{top}")
    return label
