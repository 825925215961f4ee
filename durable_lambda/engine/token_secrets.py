"""Wait tokens' callback secrets: derived from a key, drawn at random, hashed, compared. Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from durable_lambda.engine.tokens import TokenInfo

__all__ = ["callback_secret", "new_secret", "secret_hash", "secret_matches"]


def new_secret() -> str:
    """A fresh callback secret: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def callback_secret(key: bytes, token_id: str) -> str:
    """The callback secret of ``token_id`` under ``key``: HMAC-SHA256, 256 bits, URL-safe.

    Derived, not drawn: the same key and token give the same secret in any
    process, so nothing but its hash on the token need ever be stored.
    """
    digest = hmac.new(key, b"durable-lambda callback\x00" + token_id.encode(), "sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def secret_hash(secret: str) -> str:
    """What a token stores of ``secret``: its SHA-256, hex.

    The secret carries 256 random bits, so a plain hash suffices: no salt or
    stretching is needed against guessing.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(token: TokenInfo, secret: str) -> bool:
    """Whether ``secret`` authorises ``token``'s callback, compared in constant time.

    Every stored hash is compared (no early exit), so the time taken says
    nothing about which one matched, or how much of one.
    """
    given = secret_hash(secret).encode()
    matched = False
    for stored in token.secret_hashes:
        matched |= hmac.compare_digest(given, stored.encode())
    return matched
