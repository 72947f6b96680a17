"""File names inside a bundle folder, and reading, writing and parsing its JSON configs."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from t2d_monai.utils.files import write_atomic

__all__ = ["LARGE_FILES", "MODEL_FILE", "bundle_on_sys_path", "load_json", "parse_configs", "write_json"]

#: the weights that MONAI Label and the zoo read
MODEL_FILE = "models/model.pt"
#: the zoo's list of files hosted elsewhere (url + hash)
LARGE_FILES = "large_files.yml"


def load_json(path: str | Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


def write_json(path: str | Path, content: Mapping[str, Any]) -> None:
    """Write ``content`` as indented JSON, atomically."""
    write_atomic(path, json.dumps(content, indent=4) + "\n")


def parse_configs(config_files: Sequence[str | Path], bundle_root: str | Path, overrides: Mapping[str, Any] | None = None):
    """A :class:`monai.bundle.ConfigParser` over ``config_files`` (later ones override), with ``bundle_root`` set."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(p) for p in config_files])
    parser.update({"bundle_root": str(bundle_root), **(overrides or {})})
    return parser


@contextlib.contextmanager
def bundle_on_sys_path(bundle_root: str | Path) -> Iterator[None]:
    """Run a block with ``bundle_root`` first on ``sys.path``, as the tools that run a bundle do (the model zoo's
    CI, MONAI Label), so that a packaged bundle's ``scripts`` package imports; afterwards ``sys.path`` is restored
    and ``scripts`` unloaded (as MONAI Label's ``unload_module("scripts")``), so the next bundle gets its own."""
    saved = list(sys.path)
    sys.path.insert(0, str(Path(bundle_root).resolve()))
    try:
        yield
    finally:
        sys.path[:] = saved
        for name in [m for m in sys.modules if m == "scripts" or m.startswith("scripts.")]:
            del sys.modules[name]
