"""Task registries limited to one suite's task modules.

Every task module registers into the process-wide registry on import, so a
pytest process that imported a cron task for one test would have another
suite's in-process scheduler fire it. In-process services take a registry
holding only their own modules' tasks.
"""

from __future__ import annotations

import importlib

from durable_lambda.task import TaskRegistry, default_registry


def registry_of(*modules: str) -> TaskRegistry:
    """A registry with just the tasks defined in ``modules`` (imported first)."""
    for module in modules:
        importlib.import_module(module)
    isolated = TaskRegistry()
    for task in default_registry.tasks():
        if task.fn.__module__ in modules:
            isolated.add(task)
    return isolated
