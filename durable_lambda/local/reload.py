"""Notice when a task module's source changes: the dev server's reload, by file modification times.

Polling ``stat`` needs no dependency and works on every file system (inotify
misses edits on some mounts); a dev server watches a handful of files.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

#: A file's identity for change detection: modification time (ns) and size.
Stamp = tuple[int, int]


def module_files(module: str, pythonpath: Sequence[str] = ()) -> list[Path]:
    """The source files of ``module``: its file, or every ``.py`` under a package's folders.

    ``pythonpath`` is searched first, as the functions' ``PYTHONPATH`` is. A module
    that cannot be found yet yields no file (it may be created later).
    """
    importlib.invalidate_caches()  # a module created since the last look
    added = [p for p in pythonpath if p not in sys.path]
    sys.path[:0] = added
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    finally:
        for path in added:
            sys.path.remove(path)
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return sorted(
            file
            for folder in spec.submodule_search_locations
            for file in Path(folder).rglob("*.py")
        )
    return [Path(spec.origin)] if spec.origin and spec.origin.endswith(".py") else []


class ModuleWatcher:
    """Tells which source files of some modules changed since the last look.

    Args:
        modules: Dotted module names (packages include their subfolders).
        pythonpath: Where to look for them first.
    """

    def __init__(self, modules: Sequence[str], pythonpath: Sequence[str] = ()) -> None:
        self.modules = tuple(modules)
        self.pythonpath = tuple(pythonpath)
        self._stamps = self._scan()

    def files(self) -> list[Path]:
        """The files watched now."""
        return sorted(self._stamps)

    def changed(self) -> list[Path]:
        """Files created, modified or deleted since the previous call (or construction)."""
        stamps = self._scan()
        before, self._stamps = self._stamps, stamps
        return sorted(p for p in before.keys() | stamps.keys() if before.get(p) != stamps.get(p))

    def _scan(self) -> dict[Path, Stamp]:
        stamps: dict[Path, Stamp] = {}
        for module in self.modules:
            for file in module_files(module, self.pythonpath):
                try:
                    stat = file.stat()
                except OSError:
                    continue  # deleted between the listing and the stat: seen as gone
                stamps[file] = (stat.st_mtime_ns, stat.st_size)
        return stamps
