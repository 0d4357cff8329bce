"""Config loading: YAML files, with the original JSON `.cfg` files accepted unchanged.

Paths such as ``cfg/frontend/PASE+.cfg`` (the seed README's spelling) resolve to the copy shipped
inside the package when no such file exists relative to the working directory.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pase.errors import PaseError

PACKAGE_CFG_DIR = Path(__file__).resolve().parent / "cfg"


class ConfigError(PaseError, ValueError):
    """A config file is missing, unparsable or has a bad key/value (the message names which)."""


def resolve_cfg_path(path: str | Path) -> Path:
    """Return `path` if it exists, else the packaged config it names (``cfg/...`` or bare ``frontend/...``)."""
    p = Path(path)
    if p.exists():
        return p
    parts = p.parts
    if parts and parts[0] == "cfg":
        parts = parts[1:]
    packaged = PACKAGE_CFG_DIR.joinpath(*parts) if parts else None
    if packaged is not None and packaged.exists():
        return packaged
    raise ConfigError(f"config file not found: {path} (nor as a packaged config under {PACKAGE_CFG_DIR})")


def load_config(path: str | Path) -> dict[str, Any]:
    """Load a YAML or JSON config into a dict.

    JSON is tried first: the original `.cfg` files may indent with tabs, which YAML forbids.
    """
    p = resolve_cfg_path(path)
    text = p.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: neither valid JSON nor YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def check_keys(cfg: dict[str, Any], allowed: set[str] | frozenset[str], where: str) -> None:
    """Raise ConfigError naming every key of `cfg` that is not in `allowed`."""
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{where}: unknown config key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
