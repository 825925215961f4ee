"""The api tier's fixture: the HTTP API on moto (helpers in ``api_support``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_support import Api, moto_api


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    yield from moto_api(monkeypatch)
