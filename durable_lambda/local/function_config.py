"""The configuration of one emulated Lambda function."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Chaos:
    """Random SIGKILLs, for reliability tests.

    Attributes:
        probability: Chance per invocation that its environment is killed.
        seed: Seed of the random choices (``None``: unseeded).
    """

    probability: float
    seed: int | None = None

    def __post_init__(self) -> None:
        """Reject a probability outside [0, 1]."""
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"chaos probability must be in [0, 1], got {self.probability}")


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """One emulated Lambda function.

    Attributes:
        handler: ``module.function``, as in the function's ``Handler`` property.
        name: The function name (context, log group, ``AWS_LAMBDA_FUNCTION_NAME``).
        timeout: Seconds an invocation may run before its environment is killed.
        reserved_concurrency: Environments that may run at once.
        memory_mb: Reported in the context; not enforced.
        env: Extra environment variables (endpoints, table names, ``DL_*``).
        pythonpath: Extra import paths, before the project root.
        init_timeout: Seconds the handler import may take.
        log_path: File receiving every environment's stderr (user prints, logs,
            START/END lines); ``None``: a new file under a temporary directory.
        inherit_stderr: Send the children's stderr to this process's stderr
            instead of a file.
        chaos: Kill environments at random moments.
        python: The interpreter running the environments.
    """

    handler: str
    name: str = "local-function"
    timeout: float = 3.0
    reserved_concurrency: int = 1
    memory_mb: int = 128
    env: Mapping[str, str] = field(default_factory=dict)
    pythonpath: Sequence[str] = ()
    init_timeout: float = 10.0
    log_path: Path | None = None
    inherit_stderr: bool = False
    chaos: Chaos | None = None
    python: str = sys.executable

    def __post_init__(self) -> None:
        """Reject a non-positive timeout or concurrency."""
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.reserved_concurrency < 1:
            raise ValueError(f"reserved_concurrency must be >= 1, got {self.reserved_concurrency}")
