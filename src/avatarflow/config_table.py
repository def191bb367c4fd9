"""The README's configuration table, generated from the services' settings classes."""

from __future__ import annotations

import importlib

SETTINGS_CLASSES = {
    "ingest": "avatarflow_ingest.settings:IngestSettings",
    "validator": "avatarflow_validator.settings:ValidatorSettings",
    "matting": "avatarflow_matting.settings:MattingSettings",
    "animator": "avatarflow_animator.settings:AnimatorSettings",
    "notifier": "avatarflow_notifier.settings:NotifierSettings",
}


def load(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _base_description(name: str) -> str:
    from avatarflow_runtime.settings import ServiceSettings

    field = ServiceSettings.model_fields.get(name)
    return (field.description or "") if field else ""


def rows() -> list[tuple[str, str, str, str]]:
    """(ENV_VAR, default, services, description) for every setting of every service."""
    table: dict[str, dict[str, object]] = {}
    for service, path in SETTINGS_CLASSES.items():
        cls = load(path)
        prefix = cls.model_config.get("env_prefix", "")
        for name, field in cls.model_fields.items():
            env = f"{prefix}{name}".upper()
            entry = table.setdefault(env, {"services": [], "defaults": set(), "doc": ""})
            # A service that only overrides a default keeps the base class's description.
            entry["doc"] = entry["doc"] or field.description or _base_description(name)
            entry["services"].append(service)  # type: ignore[union-attr]
            default = field.default
            shown = "(secret)" if "secret" in name or "jwt_secret" in name else repr(default)
            entry["defaults"].add(shown)  # type: ignore[union-attr]
    result = []
    for env, entry in sorted(table.items()):
        services = entry["services"]
        where = "all" if len(services) == len(SETTINGS_CLASSES) else ", ".join(services)  # type: ignore[arg-type]
        defaults = " / ".join(sorted(entry["defaults"]))  # type: ignore[arg-type]
        result.append((env, defaults, where, str(entry["doc"])))
    return result


def markdown() -> str:
    lines = ["| variable | default | services | notes |", "|---|---|---|---|"]
    lines += [f"| `{env}` | `{default}` | {where} | {doc} |" for env, default, where, doc in rows()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
