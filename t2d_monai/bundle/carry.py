"""Carry this project's code inside a packaged bundle, so that it runs where ``t2d_monai`` is not installed.

``t2d_monai`` is not on any package index, so a packaged bundle holds the part of it that its configs use, as
model-zoo bundles hold their own code:

.. code-block:: text

    <bundle>/scripts/__init__.py      # written here: puts scripts/ first on sys.path, imports the copy below
    <bundle>/scripts/t2d_monai/...    # byte-identical copies of the modules the configs need (import closure)

and every config's ``"$import t2d_monai"`` becomes ``"$from scripts import t2d_monai"``; ``_target_`` paths
(``t2d_monai.networks.T2DNet``) stay as they are. Every tool that runs a bundle puts the bundle folder on
``sys.path`` before it parses the configs: the model zoo's CI (``ci/verify_bundle.py``: "add bundle path to ensure
custom code can be used"), MONAI Label (``BundleInferTask``/``BundleTrainTask``: ``sys.path.insert(0, bundle)``
and ``unload_module("scripts")``), and ``python -m monai.bundle ...`` run from the bundle folder (``-m`` puts the
current folder first). From another folder, set ``PYTHONPATH=<bundle>``: MONAI's ``ConfigWorkflow.run()`` adds
the bundle folder itself, but only after ``initialize`` has already resolved the imports (and
``verify_net_in_out``/``ckpt_export`` never add it). A config item cannot do it instead: MONAI evaluates every
import statement before any other item, and only the import (``ConfigExpression.is_import_statement``).

Which copy wins: importing ``scripts`` puts ``scripts/`` first on ``sys.path``, ahead of site-packages and the
current folder, so a fresh process uses the carried copy even where another ``t2d_monai`` is installed. A process
that has already imported ``t2d_monai`` (from a checkout, an install or another bundle) keeps it, since Python
holds one module per name and replacing it would break the objects made from it; ``scripts`` then warns with both
locations. If ``scripts`` cannot be imported at all (bundle folder not on ``sys.path``), ``t2d_monai`` in the
configs is MONAI's placeholder for a failed import, and the first expression that uses it fails, naming
``scripts``: an installed ``t2d_monai`` is never picked up silently by the expressions.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import t2d_monai
from t2d_monai.bundle.layout import load_json, write_json

__all__ = [
    "CARRIED_IMPORT",
    "SCRIPTS",
    "carry_code",
    "config_modules",
    "import_closure",
    "package_modules",
    "required_packages",
]

#: the folder of a packaged bundle that holds its code (the model zoo's name for it)
SCRIPTS = "scripts"
#: what the packaged configs import instead of ``"$import t2d_monai"``
CARRIED_IMPORT = "$from scripts import t2d_monai"
_SOURCE_IMPORT = "$import t2d_monai"
#: files of the package that are not Python modules but are read at run time
_PACKAGE_DATA = {"t2d_monai.bundle": ("meta_schema_20240725.json",)}
#: packages whose versions the metadata records in their own fields (``monai_version``, ...), not as requirements
_OWN_FIELDS = ("monai", "torch", "numpy")

_BOOTSTRAP = '''"""Code that this bundle carries: the modules of t2d-monai {version} that its configs use, in t2d_monai/.

The configs import it with "$from scripts import t2d_monai". Tools that run a bundle put the bundle folder on
sys.path (the model zoo's CI, MONAI Label, `python -m monai.bundle ...` run from the bundle folder; elsewhere set
PYTHONPATH=<bundle folder>), so "scripts" is this package. It puts this folder first on sys.path, so the carried
t2d_monai wins over any installed one in a fresh process; if another t2d_monai was imported before, that one stays
(Python keeps one module per name) and a warning names both. Written by `python -m t2d_monai package_bundle`.
"""

import os
import sys
import warnings

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE in sys.path:
    sys.path.remove(_HERE)
sys.path.insert(0, _HERE)

_loaded = sys.modules.get("t2d_monai")
_carried = os.path.join(_HERE, "t2d_monai")
if _loaded is not None and os.path.dirname(os.path.abspath(getattr(_loaded, "__file__", "") or "")) != _carried:
    warnings.warn(
        f"t2d_monai is already imported from {{getattr(_loaded, '__file__', None)!r}}; this bundle carries its own "
        f"copy in {{_carried!r}} (t2d-monai {version}), which is not used in this process.",
        RuntimeWarning,
        stacklevel=2,
    )

import t2d_monai  # noqa: E402

__all__ = ["t2d_monai"]
'''


def package_modules(root: Path | None = None) -> dict[str, Path]:
    """Module name -> file of every module of the ``t2d_monai`` package (source folder ``root``)."""
    root = Path(root) if root else Path(t2d_monai.__file__).resolve().parent
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _import_nodes(tree: ast.AST, runs_on_import: bool = True):
    """(node, runs_on_import) for every import in ``tree``: ``runs_on_import`` is False inside functions and
    ``if TYPE_CHECKING:`` blocks, whose imports run only when called (optional features), or never."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, runs_on_import
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _import_nodes(child, False)
        elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            yield from _import_nodes(child, False)
        else:
            yield from _import_nodes(child, runs_on_import)


def _imports(name: str, path: Path, modules: Mapping[str, Path]) -> tuple[set[str], set[str]]:
    """The package modules that module ``name`` imports anywhere in its body (function-level and relative imports
    included), and the top-level names of the other modules it imports when it is imported (module level)."""
    base = name if path.name == "__init__.py" else name.rpartition(".")[0]
    internal, external = set(), set()
    for node, runs_on_import in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif node.level:
            anchor = base.rsplit(".", node.level - 1)[0] if node.level > 1 else base
            source = f"{anchor}.{node.module}" if node.module else anchor
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
        else:
            source = node.module or ""
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
        for target in targets:
            top = target.split(".")[0]
            if top == "t2d_monai":
                internal.add(_longest_module(target, modules))
            elif top != "__future__" and runs_on_import:
                external.add(top)
    return internal, external


def _longest_module(dotted: str, modules: Mapping[str, Path]) -> str:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in modules:
            return ".".join(parts[:i])
    raise KeyError(f"{dotted!r} names no module of t2d_monai")


def config_modules(config_dir: str | Path, modules: Mapping[str, Path] | None = None) -> set[str]:
    """The package modules that the JSON configs under ``config_dir`` name (``_target_``, expressions)."""
    modules = modules or package_modules()
    names = set()
    for path in sorted(Path(config_dir).rglob("*.json")):
        for dotted in re.findall(r"\bt2d_monai(?:\.[A-Za-z_]\w*)*", path.read_text()):
            names.add(_longest_module(dotted, modules))
    return names


def import_closure(names: Iterable[str], modules: Mapping[str, Path] | None = None) -> set[str]:
    """``names`` with every package module they import, directly or not, and all their parent packages (Python
    runs a package's ``__init__`` before its submodules)."""
    modules = modules or package_modules()
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(_imports(name, modules[name], modules)[0])
    return seen


def required_packages(closure: Iterable[str], documented: Mapping[str, str] | None = None,
                      modules: Mapping[str, Path] | None = None) -> dict[str, str]:
    """Distribution name -> installed version of every published package that the ``closure`` modules import,
    plus the ``documented`` ones (the source metadata's ``required_packages_version``: packages that MONAI
    components in the configs need, such as ``tensorboard``), without ``t2d_monai`` and without monai, torch and
    numpy (the metadata's ``monai_version``/``pytorch_version``/``numpy_version`` pin those).

    Raises:
        ModuleNotFoundError: a module that the carried code imports is not installed here (its version is needed).
    """
    modules = modules or package_modules()
    tops: set[str] = set()
    for name in closure:
        tops |= _imports(name, modules[name], modules)[1]
    distributions = importlib.metadata.packages_distributions()
    found = {}
    for top in sorted(tops - set(sys.stdlib_module_names)):
        if top not in distributions:
            raise ModuleNotFoundError(f"the carried code imports {top!r}, which is not installed here")
        dist = distributions[top][0]
        found[dist] = importlib.metadata.version(dist)
    for dist, version in (documented or {}).items():
        if dist.replace("_", "-") == "t2d-monai":
            continue
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = version
    return {d: v for d, v in sorted(found.items(), key=lambda kv: kv[0].lower()) if d.lower() not in _OWN_FIELDS}


def _use_carried_import(config: Any) -> Any:
    if isinstance(config, dict):
        return {k: _use_carried_import(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_use_carried_import(v) for v in config]
    return CARRIED_IMPORT if config == _SOURCE_IMPORT else config


def carry_code(bundle_root: str | Path, package_root: str | Path | None = None) -> dict[str, str]:
    """Copy the modules that the configs of ``bundle_root`` need into ``<bundle_root>/scripts/t2d_monai``, write
    ``scripts/__init__.py``, and make every config import ``t2d_monai`` from there (:data:`CARRIED_IMPORT`).

    Args:
        bundle_root: a packaged bundle folder (with ``configs/``); changed in place.
        package_root: the ``t2d_monai`` source folder to copy from; default: the one imported.

    Returns:
        the ``required_packages_version`` that the carried code needs (see :func:`required_packages`), from the
        ones that ``configs/metadata.json`` documents and the imports of the carried modules.
    """
    root = Path(bundle_root)
    modules = package_modules(Path(package_root) if package_root else None)
    closure = import_closure(config_modules(root / "configs", modules), modules)
    scripts = root / SCRIPTS
    top = modules["t2d_monai"].parent.parent
    for name in sorted(closure):
        source = modules[name]
        target = scripts / source.relative_to(top)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        for data in _PACKAGE_DATA.get(name, ()):
            shutil.copyfile(source.parent / data, target.parent / data)
    (scripts / "__init__.py").write_text(_BOOTSTRAP.format(version=t2d_monai.__version__))
    for path in sorted((root / "configs").rglob("*.json")):
        config = load_json(path)
        carried = _use_carried_import(config)
        if carried != config:
            write_json(path, carried)
    documented = load_json(root / "configs" / "metadata.json").get("required_packages_version", {})
    return required_packages(closure, documented, modules)
