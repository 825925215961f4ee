"""``durable-lambda dev``: the emulated stack, the HTTP API on localhost, reloads and a run stream.

Everything the template deploys runs on this machine: :class:`EmulatedStack`
(moto, the worker behind its SQS poller, the scheduler ticking) plus the api
function, also an emulated Lambda, behind :class:`ApiServer`, so a request
meets the same cold start, settings and catalog as on API Gateway.

Reload is a deploy: when a task module's file changes, every function's
environments are retired (:meth:`FunctionPool.recycle`); new invocations
cold-start on the new code, an invocation in flight finishes on the old one,
and a run whose journal no longer matches meets ``NonDeterminismError`` as
after a real deploy. The api function is warmed again at once, which
publishes the new catalog.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from durable_lambda.engine.records import RunQuery, RunRecord
from durable_lambda.local.function_config import FunctionConfig
from durable_lambda.local.http_api import ApiServer
from durable_lambda.local.log_shipper import LogShipper
from durable_lambda.local.process_pool import FunctionPool, InvocationResult
from durable_lambda.local.reload import ModuleWatcher
from durable_lambda.local.stack import EmulatedStack
from durable_lambda.settings import Settings
from durable_lambda.viewer import VIEWER_PATH

#: The handlers of the installed package (``durable_lambda.local.functions``).
API_HANDLER = "durable_lambda.local.functions.api.handler"
WORKER_HANDLER = "durable_lambda.local.functions.worker.handler"
SCHEDULER_HANDLER = "durable_lambda.local.functions.scheduler.handler"
#: API Gateway's integration timeout, the api function's longest useful run.
API_TIMEOUT = 29.0
#: Fixed names, so ``--persist`` finds its table and bucket again after a restart.
DEV_NAME = "durable-lambda-dev"

#: What the server reports: one JSON-able dict per event (see :class:`DevServer`).
Event = dict[str, Any]


class DevServer:
    """The dev stack: start, serve, watch, stream; stop leaves no process and no port.

    Events passed to ``on_event`` (``"event"`` names the kind): ``ready`` (the URLs),
    ``run`` (a run's status or invocation count changed), ``reloaded`` (files
    changed and functions recycled; ``error`` when the new code fails to import),
    ``restored`` and ``saved`` (``persist``), ``stopped``.

    Args:
        task_modules: The user's task modules.
        port: The API's port (0: any free one).
        timeout: The worker's function timeout, seconds.
        persist: A JSON file keeping the table and bucket across restarts.
        pythonpath: Where the task modules are imported from (default: the current folder).
        endpoints: Per service, an endpoint beating the embedded moto server.
        localstack: Put SQS, S3 and Logs on LocalStack (as :class:`EmulatedStack`).
        scheduler_interval: Seconds between scheduler ticks.
        poll_interval: Seconds between looks at the run list and the watched files.
        on_event: Receives every event (from background threads; serialised by a lock).
        log_dir: Where the functions' logs go (default: a temporary folder).
    """

    def __init__(
        self,
        task_modules: Sequence[str],
        *,
        port: int = 8787,
        timeout: float = 30.0,
        persist: Path | None = None,
        pythonpath: Sequence[str] | None = None,
        endpoints: dict[str, str] | None = None,
        localstack: bool | str = False,
        scheduler_interval: float = 5.0,
        poll_interval: float = 0.5,
        on_event: Callable[[Event], None] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.task_modules = tuple(task_modules)
        self.port = port
        self.persist = persist
        self.pythonpath = tuple(pythonpath if pythonpath is not None else [str(Path.cwd())])
        self.poll_interval = poll_interval
        self._on_event = on_event or (lambda _: None)
        self._emit_lock = threading.Lock()
        settings = dev_settings(timeout)
        if persist is not None:
            from durable_lambda.local import persist as state  # noqa: PLC0415 - only with --persist

            # The key token callback URLs were signed with before the restart.
            key = state.saved_callback_key(persist)
            settings = settings.with_(callback_key=key) if key else settings
        self.stack = EmulatedStack(
            settings,
            task_modules=self.task_modules,
            timeout=timeout,
            scheduler_interval=scheduler_interval,
            pythonpath=self.pythonpath,
            worker_handler=WORKER_HANDLER,
            scheduler_handler=SCHEDULER_HANDLER,
            endpoints=endpoints,
            localstack=localstack,
            log_dir=log_dir,
        )
        self.api: FunctionPool | None = None
        self.server: ApiServer | None = None
        self.watcher = ModuleWatcher(self.task_modules, self.pythonpath)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.shipper: LogShipper | None = None
        self._seen: dict[str, tuple[dt.datetime, str, int]] = {}

    @property
    def url(self) -> str:
        """The HTTP API's base URL (valid once started)."""
        if self.server is None:
            raise RuntimeError("the dev server is not running; call start() first")
        return self.server.url

    def start(self) -> Self:
        """Start the stack, restore state, warm the API, serve it; emit ``ready``."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        # The stack imports the tasks here too (to validate triggers), from the same folders.
        sys.path[:0] = [p for p in self.pythonpath if p not in sys.path]
        stack = self.stack.start()
        if self.persist is not None:
            from durable_lambda.local import persist  # noqa: PLC0415 - only with --persist

            items, objects = persist.load(self.persist, stack.session, stack.settings)
            self._emit({"event": "restored", "items": items, "objects": objects})
        self.api = FunctionPool(
            FunctionConfig(
                handler=API_HANDLER,
                name=f"{DEV_NAME}-api",
                timeout=API_TIMEOUT,
                reserved_concurrency=2,
                env=stack.env(),
                pythonpath=self.pythonpath,
                log_path=stack.log_dir / "api.log",
            )
        )
        init_error = self._warm_api()
        self.server = ApiServer(self._invoke_api, port=self.port)
        self.server.start()
        self._remember_runs(emit=False)
        # Each function's log file also goes to its CloudWatch group, as on AWS (`runs logs`).
        self.shipper = LogShipper(
            stack.session.client("logs"),
            {
                stack.log_dir / f"{role}.log": f"{stack.settings.table_name}-{role}"
                for role in ("worker", "scheduler", "api")
            },
        )
        threads = ((self._watch, "dl-dev-watch"), (self._stream, "dl-dev-runs"))
        for target, name in (*threads, (self._ship, "dl-dev-logs")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()
        self._emit(
            {
                "event": "ready",
                "api_url": self.url,
                "viewer_url": self.url + VIEWER_PATH,
                "task_modules": list(self.task_modules),
                "watching": [str(f) for f in self.watcher.files()],
                "endpoints": stack.endpoints.to_json(),
                "moto_url": stack.moto.endpoint_url,
                "log_dir": str(stack.log_dir),
                "log_groups": self.shipper.groups(),
                "persist": str(self.persist) if self.persist else None,
                "error": init_error,
            }
        )

    def reload(self, changed: Sequence[Path] = ()) -> Event:
        """Retire every function's environments (new code on the next invocations); the event."""
        for pool in (self.stack.worker, self.stack.scheduler, self.api):
            if pool is not None:
                pool.recycle()
        event = {
            "event": "reloaded",
            "files": [str(p) for p in changed],
            "error": self._warm_api(),
        }
        self._emit(event)
        return event

    def stop(self) -> None:
        """Stop serving, save state (``persist``), stop every function and moto (idempotent)."""
        self._stop.set()
        if self.server is not None:
            self.server.stop()
        for thread in self._threads:
            thread.join(timeout=10.0)
        self._threads.clear()
        if self.api is not None:
            self.api.close()
        self._ship_once()  # the last lines, while the Logs endpoint is still up
        if self.persist is not None and self.server is not None:
            from durable_lambda.local import persist  # noqa: PLC0415 - only with --persist

            items, objects = persist.save(self.persist, self.stack.session, self.stack.settings)
            self._emit({"event": "saved", "items": items, "objects": objects})
        self.stack.stop()
        if self.server is not None:
            self._emit({"event": "stopped"})
        self.server = self.api = None
        self.shipper = None

    def _warm_api(self) -> str | None:
        """Start one api environment now: its init imports the tasks and publishes the catalog."""
        if self.api is None:
            return None
        try:
            self.api.prewarm(1)
        except Exception as exc:  # noqa: BLE001 - reported; the next request retries the init
            return f"{type(exc).__name__}: {exc}"
        return None

    def _invoke_api(self, event: dict[str, Any]) -> dict[str, Any]:
        if self.api is None:
            return _gateway_error(503, "the dev server is stopping")
        result: InvocationResult = self.api.invoke(event)
        if result.ok and isinstance(result.result, dict):
            return result.result
        # API Gateway answers 502 when the function fails; say why, as its logs would.
        return _gateway_error(502, result.error or "the api function returned no response")

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_interval):
            changed = self.watcher.changed()
            if changed:
                self.reload(changed)

    def _ship(self) -> None:
        while not self._stop.wait(self.poll_interval):
            self._ship_once()

    def _ship_once(self) -> None:
        if self.shipper is None:
            return
        try:
            self.shipper.ship()
        except Exception as exc:  # noqa: BLE001 - logs are a convenience; the stack goes on
            self._emit({"event": "error", "error": f"shipping logs: {type(exc).__name__}: {exc}"})

    def _stream(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self._remember_runs(emit=True)
            except Exception as exc:  # noqa: BLE001 - a failed read must not end the stream
                self._emit({"event": "error", "error": f"{type(exc).__name__}: {exc}"})

    def _remember_runs(self, *, emit: bool) -> None:
        # A listing may hold a run more than once, in older states too (seen on moto):
        # only a newer record of a run may report a change.
        latest: dict[str, RunRecord] = {}
        for run in self.stack.client.list_runs(RunQuery(limit=100)):
            known = latest.get(run.run_id)
            if known is None or run.updated_at > known.updated_at:
                latest[run.run_id] = run
        for run in sorted(latest.values(), key=lambda r: (r.updated_at, r.run_id)):
            seen = self._seen.get(run.run_id)
            if seen is not None and run.updated_at <= seen[0]:
                continue
            self._seen[run.run_id] = (run.updated_at, run.status.value, run.invocations)
            if emit and (seen is None or seen[1:] != (run.status.value, run.invocations)):
                self._emit(run_event(run))

    def _emit(self, event: Event) -> None:
        with self._emit_lock:
            self._on_event(event)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def dev_settings(timeout: float) -> Settings:
    """The stack's settings: fixed names, and a safety margin that fits a short timeout.

    The deployed margin (at least 10 s before the deadline) would leave a 10 s
    dev timeout no time for any step; a quarter of a short timeout keeps
    chaining visible while steps still run.
    """
    margin = min(Settings().safety_margin_seconds, timeout / 4)
    return Settings(table_name=DEV_NAME, bucket_name=DEV_NAME, safety_margin_seconds=margin)


def run_event(run: RunRecord) -> Event:
    """The ``run`` event of ``run``: status, invocations, duration, error (never its payload)."""
    start = run.started_at or run.created_at
    end = run.finished_at or run.updated_at
    return {
        "event": "run",
        "run_id": run.run_id,
        "task_id": run.task_id,
        "status": run.status.value,
        "invocations": run.invocations,
        "duration_seconds": round((end - start).total_seconds(), 3) if end >= start else None,
        "error": f"{run.error.type}: {run.error.message}" if run.error else None,
    }


def _gateway_error(status: int, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"message": message}),
    }
