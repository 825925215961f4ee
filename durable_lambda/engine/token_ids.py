"""Wait token ids: derived from the run and the call, and naming the run they belong to. Pure."""

from __future__ import annotations

import hashlib

_TOKEN_PREFIX = "tok_"  # noqa: S105 - an id prefix, not a secret
_DIGEST_LENGTH = 32
_RUN_SEPARATOR = "_"


def token_id_for(run_id: str, key: str) -> str:
    """The id of the token created by call ``key`` of run ``run_id``: stable, URL-safe.

    ``tok_<32 hex>_<run id>``: the run id in it says where the token is kept
    (beside its run's journal, so the run's journal read brings it along).
    """
    digest = hashlib.sha256(f"{run_id}\x00{key}".encode()).hexdigest()
    return f"{_TOKEN_PREFIX}{digest[:_DIGEST_LENGTH]}{_RUN_SEPARATOR}{run_id}"


def run_of_token(token_id: str) -> str | None:
    """The run id a token id names, or ``None`` for an id without one.

    Tokens created before ids named their run (``tok_<32 hex>``), and ids
    that are no token's at all, name none: stores keep such tokens apart.
    """
    digest_end = len(_TOKEN_PREFIX) + _DIGEST_LENGTH
    digest = token_id[len(_TOKEN_PREFIX) : digest_end]
    run_id = token_id[digest_end + len(_RUN_SEPARATOR) :]
    if (
        not token_id.startswith(_TOKEN_PREFIX)
        or token_id[digest_end : digest_end + len(_RUN_SEPARATOR)] != _RUN_SEPARATOR
        or len(digest) != _DIGEST_LENGTH
        or digest.strip("0123456789abcdef")
        or not run_id
    ):
        return None
    return run_id
