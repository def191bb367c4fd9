"""Schema compatibility within a major version (the versioning rule of docs/contracts.md, checked).

``schemas/released/<major>/`` holds the JSON Schemas as first released for that major version. Within
it, a change must be additive so that every producer and consumer of the same major keep working:

* a property may be added only as optional; a property is never removed;
* ``required`` never changes (a newly required field breaks old producers, a dropped requirement
  breaks old consumers);
* a property's ``type``, ``const``, ``format`` or string ``pattern`` never changes;
* an enum may gain members, never lose them.

:func:`incompatibilities` lists the breaking changes between a released schema and the current one;
a test (run by ``./dev test`` in CI) fails on any.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .events import SCHEMA_MAJOR
from .export import SCHEMA_DIR, event_schemas

RELEASED_DIR = SCHEMA_DIR / "released"


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in node and seen < 32:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = root.get("$defs", {}).get(name, {})
        seen += 1
    return node


def _variants(node: dict[str, Any], root: dict[str, Any]) -> list[dict[str, Any]]:
    node = _resolve(node, root)
    options = node.get("anyOf") or node.get("oneOf")
    return [_resolve(option, root) for option in options] if options else [node]


def _enum_members(node: dict[str, Any], root: dict[str, Any]) -> set[Any] | None:
    members: set[Any] = set()
    for variant in _variants(node, root):
        if "enum" not in variant:
            return None
        members.update(json.dumps(m) for m in variant["enum"])
    return members


def _compare(
    old: dict[str, Any], new: dict[str, Any], roots: tuple[dict[str, Any], dict[str, Any]], path: str
) -> list[str]:
    old_root, new_root = roots
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    problems: list[str] = []
    for key in ("type", "const", "format", "pattern"):
        if old.get(key) != new.get(key):
            problems.append(f"{path}: {key} changed from {old.get(key)!r} to {new.get(key)!r}")
    old_members, new_members = _enum_members(old, old_root), _enum_members(new, new_root)
    if old_members is not None:
        if new_members is None:
            problems.append(f"{path}: enum became unrestricted or changed kind")
        elif lost := old_members - new_members:
            problems.append(f"{path}: enum lost {sorted(json.loads(m) for m in lost)}")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    if old_props or new_props:
        if set(old.get("required", [])) != set(new.get("required", [])):
            added = sorted(set(new.get("required", [])) - set(old.get("required", [])))
            dropped = sorted(set(old.get("required", [])) - set(new.get("required", [])))
            problems.append(f"{path}: required changed (added {added}, dropped {dropped})")
        for name, old_prop in old_props.items():
            if name not in new_props:
                problems.append(f"{path}.{name}: removed")
                continue
            problems.extend(_compare(old_prop, new_props[name], roots, f"{path}.{name}"))
    if "items" in old and "items" in new:
        problems.extend(_compare(old["items"], new["items"], roots, f"{path}[]"))
    old_variants, new_variants = _variants(old, old_root), _variants(new, new_root)
    if len(old_variants) > 1 and len(old_variants) == len(new_variants):
        for i, (a, b) in enumerate(zip(old_variants, new_variants, strict=True)):
            if a.get("properties") or b.get("properties"):
                problems.extend(_compare(a, b, roots, f"{path}<{i}>"))
    return problems


def incompatibilities(old: dict[str, Any], new: dict[str, Any], name: str = "$") -> list[str]:
    """Breaking changes from the released schema ``old`` to ``new`` (empty: compatible)."""
    return _compare(old, new, (old, new), name)


def check_released(major: int = SCHEMA_MAJOR, released_dir: Path = RELEASED_DIR) -> list[str]:
    """Breaking changes of the current models against ``released/<major>/`` (and schemas gone from it)."""
    folder = released_dir / str(major)
    current = event_schemas()
    problems: list[str] = []
    for path in sorted(folder.glob("*.schema.json")):
        if path.name not in current:
            problems.append(f"{path.name}: schema removed within major {major}")
            continue
        problems.extend(incompatibilities(json.loads(path.read_text()), current[path.name], path.name))
    return problems
