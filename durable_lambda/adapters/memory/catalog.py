"""The task catalog in memory: the reference for the DynamoDB one."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from durable_lambda.catalog import TaskDescription


class MemoryCatalogStore:
    """Task descriptions in a dict; counts its requests as DynamoDB would make them."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskDescription] = {}
        self.write_requests = 0
        self.read_requests = 0

    def versions(self, task_ids: Sequence[str]) -> dict[str, str]:
        """The stored version of each catalogued task of ``task_ids``."""
        with self._lock:
            self.read_requests += (len(task_ids) + 99) // 100
            return {t: self._tasks[t].version for t in task_ids if t in self._tasks}

    def put(self, description: TaskDescription) -> bool:
        """Store ``description`` unless that version is already there."""
        with self._lock:
            self.write_requests += 1
            stored = self._tasks.get(description.task_id)
            if stored is not None and stored.version == description.version:
                return False
            self._tasks[description.task_id] = description
            return True

    def get(self, task_id: str) -> TaskDescription | None:
        """The task's description, or ``None``."""
        with self._lock:
            self.read_requests += 1
            return self._tasks.get(task_id)

    def list(self) -> list[TaskDescription]:
        """Every catalogued task, by id."""
        with self._lock:
            self.read_requests += 1
            return [self._tasks[t] for t in sorted(self._tasks)]
