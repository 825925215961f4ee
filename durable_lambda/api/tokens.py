"""Wait tokens over HTTP: complete, fail, heartbeat and read them; webhook callbacks.

Routes (errors have the shape of every other route):

- ``POST /tokens/{token_id}/complete`` with ``{"data": ...}``
- ``POST /tokens/{token_id}/fail`` with ``{"error": {"type", "message"}}``
- ``POST /tokens/{token_id}/heartbeat``
- ``GET /tokens/{token_id}``: status, run, deadlines; the data only with ``?include=values``
- ``POST /callbacks/{token_id}?secret=...``: for webhooks holding no AWS
  credentials (the one route without IAM auth). The body is the completion
  data; ``&action=fail`` takes ``{"error": {"type", "message"}}`` instead, and
  ``&action=heartbeat`` no body. A wrong or missing secret answers exactly as
  an unknown token does.

Refusals: 404 unknown token, 409 already resolved (nothing changes), 413 data
above the value limit (naming size and limit), 422 a malformed body.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from durable_lambda import serde
from durable_lambda.api.service import ApiError, api_error
from durable_lambda.client_control import MAX_ERROR_MESSAGE_LENGTH, MAX_ERROR_TYPE_LENGTH
from durable_lambda.engine.token_secrets import secret_matches
from durable_lambda.engine.tokens import TokenInfo, TokenStatus
from durable_lambda.errors import (
    PayloadTooLarge,
    TokenAlreadyResolvedError,
    TokenNotFoundError,
)
from durable_lambda.views import ErrorView, ValueView, value_view

if TYPE_CHECKING:
    from collections.abc import Callable

    from durable_lambda.api.service import ApiService

#: Token ids are ``tok_``, 32 hex digits, ``_`` and the run id; the bound only keeps junk out.
TokenId = Annotated[str, Path(max_length=128)]


class TokenError(BaseModel):
    """What failed a token: the waiting task raises ``TokenFailedError(type, message)``."""

    model_config = ConfigDict(extra="forbid")

    type: Annotated[str, Field(min_length=1, max_length=MAX_ERROR_TYPE_LENGTH)]
    message: Annotated[str, Field(max_length=MAX_ERROR_MESSAGE_LENGTH)] = ""


class CompleteTokenRequest(BaseModel):
    """``POST /tokens/{token_id}/complete``: the data the waiting task receives."""

    model_config = ConfigDict(extra="forbid")

    data: Any = None


class FailTokenRequest(BaseModel):
    """``POST /tokens/{token_id}/fail`` (and a callback with ``action=fail``)."""

    model_config = ConfigDict(extra="forbid")

    error: TokenError


class TokenView(BaseModel):
    """A wait token as the API shows it (never its secret).

    Attributes:
        token_id: The token.
        run_id: The run waiting on it.
        status: ``PENDING``, ``COMPLETED``, ``FAILED`` or ``TIMED_OUT``.
        name: Its name, if the task gave one.
        created_at: When it was created.
        timeout_at: When it times out unless resolved (``None``: never).
        heartbeat_timeout: Seconds allowed between heartbeats, if any.
        heartbeat_at: When it times out for want of a heartbeat, if it needs them.
        resolved_at: When it was resolved.
        timeout_reason: ``timeout`` or ``heartbeat``, once timed out.
        error: What failed it.
        tags: Its labels.
        data: The completion data: by reference (size and hash) unless
            ``?include=values``, then inline.
    """

    model_config = ConfigDict(frozen=True)

    token_id: str
    run_id: str
    status: TokenStatus
    name: str | None = None
    created_at: dt.datetime
    timeout_at: dt.datetime | None = None
    heartbeat_timeout: float | None = None
    heartbeat_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    timeout_reason: str | None = None
    error: ErrorView | None = None
    tags: list[str] = []
    data: ValueView | None = None


class CallbackResponse(BaseModel):
    """What a callback learns: only the token's new status."""

    token_id: str
    status: TokenStatus


def token_view(token: TokenInfo, *, include_values: bool) -> TokenView:
    """The API's view of ``token``: its data inline only when asked for."""
    data = None
    if token.data is not None:
        if include_values:
            data = value_view(token.data, include=True)
        else:
            encoded = token.data.encode()
            data = ValueView(
                size=len(encoded), sha256=hashlib.sha256(encoded).hexdigest(), inline=False
            )
    error = None
    if token.error is not None:
        error = ErrorView(type=token.error.type, message=token.error.message)
    return TokenView(
        token_id=token.token_id,
        run_id=token.run_id,
        status=token.status,
        name=token.name,
        created_at=token.created_at,
        timeout_at=token.timeout_at,
        heartbeat_timeout=token.heartbeat_timeout,
        heartbeat_at=token.heartbeat_at,
        resolved_at=token.resolved_at,
        timeout_reason=token.timeout_reason,
        error=error,
        tags=list(token.tags),
        data=data,
    )


def _not_found(token_id: str) -> ApiError:
    # The one body for an unknown token and for a wrong secret: a caller
    # without the secret learns nothing about which tokens exist.
    return ApiError(404, "token_not_found", f"no wait token {token_id!r}")


class TokenService:
    """The token operations of the API on the service's client (its token store)."""

    def __init__(self, service: ApiService) -> None:
        """Use ``service``'s client and value limit."""
        self.client = service.client
        self.settings = service.settings

    def _call(self, token_id: str, operation: Callable[[], TokenInfo]) -> TokenInfo:
        try:
            return operation()
        except TokenNotFoundError:
            raise _not_found(token_id) from None
        except TokenAlreadyResolvedError as exc:
            raise ApiError(409, "token_already_resolved", str(exc), {"status": exc.state}) from None
        except PayloadTooLarge as exc:
            raise api_error(exc) from None

    def complete(self, token_id: str, data: Any) -> TokenView:
        """Complete the token with ``data`` (413 above the value limit, checked first)."""
        encoded = serde.encode(data)
        size = len(encoded.encode())
        if size > self.settings.max_value_bytes:
            raise api_error(
                PayloadTooLarge(f"token {token_id!r} data", size, self.settings.max_value_bytes)
            )
        token = self._call(token_id, lambda: self.client.complete_token(token_id, data))
        return token_view(token, include_values=False)

    def fail(self, token_id: str, error: TokenError) -> TokenView:
        """Fail the token: the waiting task raises ``TokenFailedError``."""
        token = self._call(
            token_id, lambda: self.client.fail_token(token_id, error.type, error.message)
        )
        return token_view(token, include_values=False)

    def heartbeat(self, token_id: str) -> TokenView:
        """Move the token's heartbeat deadline out."""
        token = self._call(token_id, lambda: self.client.heartbeat_token(token_id))
        return token_view(token, include_values=False)

    def retrieve(self, token_id: str, *, include_values: bool) -> TokenView:
        """The token (its data only with ``include_values``)."""
        token = self._call(token_id, lambda: self.client.retrieve_token(token_id))
        return token_view(token, include_values=include_values)

    def callback(self, token_id: str, secret: str | None, action: str, body: Any) -> TokenView:
        """A webhook's call: checked against the token's secret hash before anything else."""
        token = self.client.tokens.get(token_id) if self.client.tokens is not None else None
        if token is None or secret is None or not secret_matches(token, secret):
            raise _not_found(token_id)
        if action == "heartbeat":
            return self.heartbeat(token_id)
        if action == "fail":
            try:
                request = FailTokenRequest.model_validate(body)
            except ValidationError as exc:
                raise _invalid(exc) from None
            return self.fail(token_id, request.error)
        return self.complete(token_id, body)


def _invalid(exc: ValidationError) -> ApiError:
    fields = [
        {"field": ".".join(["body", *(str(p) for p in e["loc"])]), "message": e["msg"]}
        for e in exc.errors()
    ]
    named = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ApiError(422, "validation_error", f"invalid request: {named}", fields)


def token_routes(
    app: APIGatewayRestResolver,
    service: ApiService,
    respond: Callable[[int, Any], Response[str]],
    responses: Callable[..., Any],
) -> None:
    """Bind the token and callback routes to ``app`` (``respond``/``responses``: app.py's)."""
    tokens = TokenService(service)

    @app.post(
        "/tokens/<token_id>/complete",
        summary="Complete a wait token with data",
        responses=responses(200, TokenView, 404, 409, 413),
    )
    def complete(token_id: TokenId, body: Annotated[CompleteTokenRequest, Body()]) -> Response[str]:
        return respond(200, tokens.complete(token_id, body.data))

    @app.post(
        "/tokens/<token_id>/fail",
        summary="Fail a wait token (the task raises TokenFailedError)",
        responses=responses(200, TokenView, 404, 409),
    )
    def fail(token_id: TokenId, body: Annotated[FailTokenRequest, Body()]) -> Response[str]:
        return respond(200, tokens.fail(token_id, body.error))

    @app.post(
        "/tokens/<token_id>/heartbeat",
        summary="Move a wait token's heartbeat deadline out",
        responses=responses(200, TokenView, 404, 409),
    )
    def heartbeat(token_id: TokenId) -> Response[str]:
        return respond(200, tokens.heartbeat(token_id))

    @app.get(
        "/tokens/<token_id>",
        summary="A wait token (its data with ?include=values)",
        responses=responses(200, TokenView, 404),
    )
    def retrieve(
        token_id: TokenId, include: Annotated[Literal["values"] | None, Query()] = None
    ) -> Response[str]:
        return respond(200, tokens.retrieve(token_id, include_values=include == "values"))

    @app.post(
        "/callbacks/<token_id>",
        summary="Complete, fail or heartbeat a wait token with its secret (no AWS credentials)",
        responses=responses(200, CallbackResponse, 404, 409, 413),
    )
    def callback(
        token_id: TokenId,
        secret: Annotated[str | None, Query()] = None,
        action: Annotated[Literal["complete", "fail", "heartbeat"], Query()] = "complete",
        body: Annotated[Any, Body()] = None,
    ) -> Response[str]:
        view = tokens.callback(token_id, secret, action, body)
        return respond(200, CallbackResponse(token_id=view.token_id, status=view.status))


__all__ = [
    "CallbackResponse",
    "CompleteTokenRequest",
    "FailTokenRequest",
    "TokenError",
    "TokenService",
    "TokenView",
    "token_routes",
    "token_view",
]
