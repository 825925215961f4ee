"""One contract suite, two backends: the memory reference and DynamoDB/S3/SQS on moto.

``DL_TEST_BACKENDS=memory`` (or ``moto``, or ``memory,moto``) restricts the run;
by default both run. Every test taking ``backend`` runs once per backend.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from contract_backends import ENV_BACKENDS, Backend, memory_backend, moto_backend, selected_backends


@pytest.fixture(
    params=[
        pytest.param(name, marks=[pytest.mark.moto] if name == "moto" else [])
        for name in selected_backends()
    ]
)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    if request.param == "memory":
        yield from memory_backend()
    else:
        yield from moto_backend(monkeypatch)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """The moto backend alone, for tests of AWS specifics (request budgets, item layout)."""
    if "moto" not in selected_backends():
        pytest.skip(f"moto backend not selected by {ENV_BACKENDS}")
    yield from moto_backend(monkeypatch)
