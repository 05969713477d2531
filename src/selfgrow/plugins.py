"""Plugins: a user's own modules, imported before any component is built, so that what they register counts.

A plugin is a module that registers growers, retention strategies or net kinds with selfgrow's
decorators (`@register_grower("name")`, `@register_retention("name")`, `@register_net("kind")`);
once imported, a config names them like the built-in ones. The run config's `plugins` (and the
commands' `--plugins`) list them, each as an importable module name (`my_package.my_module`, found
on `sys.path` / `PYTHONPATH`) or as the path of a `.py` file. `selfgrow run`, every bench job and
every distributed worker import the run's plugins before they build anything (a worker reads them
from the job's config, so the machines need the same files, not the same command line).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from selfgrow.errors import SelfgrowError

_ACCEPTED = "an importable module name (my_package.my_module, on PYTHONPATH) or the path of a .py file"


def load_plugins(plugins: Sequence[str]) -> list[ModuleType]:
    """Import each plugin once (a repeat returns the module already imported); one sentence when one cannot be."""
    if isinstance(plugins, str) or not all(isinstance(p, str) and p.strip() for p in plugins):
        raise SelfgrowError(f"plugins={plugins!r} is invalid; accepted: a list, each item {_ACCEPTED}.")
    return [_load(plugin.strip()) for plugin in plugins]


def _load(plugin: str) -> ModuleType:
    if plugin.endswith(".py"):
        return _load_file(Path(plugin))
    try:
        return importlib.import_module(plugin)
    except ModuleNotFoundError as err:
        if err.name and plugin.startswith(err.name):  # the plugin itself, not an import inside it
            raise SelfgrowError(f"Plugin {plugin!r} was not found on the module path; accepted: {_ACCEPTED}.") from err
        raise _failed(plugin, err) from err
    except Exception as err:  # a plugin's own error, reported with its kind and text
        raise _failed(plugin, err) from err


def _load_file(path: Path) -> ModuleType:
    """The module of a .py file, imported under a name derived from its absolute path (stable across calls)."""
    resolved = path.expanduser().resolve()
    if not resolved.is_file():
        raise SelfgrowError(f"Plugin file {str(path)!r} does not exist; accepted: {_ACCEPTED}.")
    name = f"selfgrow_plugin_{resolved.stem}_{hashlib.sha256(str(resolved).encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise SelfgrowError(f"Plugin file {str(path)!r} cannot be imported as a module; accepted: {_ACCEPTED}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        raise _failed(str(path), err) from err
    return module


def _failed(plugin: str, err: BaseException) -> SelfgrowError:
    return SelfgrowError(f"Plugin {plugin!r} failed while being imported ({type(err).__name__}: {err}); "
                         "fix the plugin (importing it alone shows the traceback).")


__all__ = ["load_plugins"]
