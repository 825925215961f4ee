"""Sample tasks: importing this package registers them (the worker's DL_TASK_MODULES)."""

from functions.tasks import orders, reports, showcase

__all__ = ["orders", "reports", "showcase"]
