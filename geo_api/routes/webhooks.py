"""Webhook subscriptions for alert changes (issue 6). Administrators only: a subscription
receives every matching alert, so creating one is as sensitive as reading them all.

``POST /api/webhooks`` answers the signing secret once, as ``whsec_<base64>`` (generated when
not given); listings never show it. Deliveries are signed per Standard Webhooks
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature``; layers/alerts/webhooks.py), so
``Webhook(secret).verify(body, headers)`` of any stock library checks them.

A URL whose host is (or resolves to) loopback, link-local, private or the database's own
address is refused with a 422 naming ``url`` unless ``GEORISK_WEBHOOK_ALLOW`` lists it; the
worker checks again before every delivery (layers/alerts/targets.py, geo_api/webhooks.py).
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, field_validator

from geo_api.auth import allow
from geo_api.body import Text, json_response
from geo_api.db import DbConn
from geo_api.errors import FieldError, InvalidField, NotFound
from geo_api.models.alerts import DeliveryList, NewWebhookSubscription, WebhookList
from layers.alerts import webhooks
from layers.alerts.targets import TargetGuard, TargetRefused
from layers.core.vocab import ALERT_RULES
from layers.prevention.events import EVENTS as PREVENTION_EVENTS

router = APIRouter(tags=["webhooks"])
SubId = Annotated[int, Path(ge=1, le=2**31 - 1)]
#: Alert rules, and the safety-score and expiry events (layers/prevention/events.py).
Rule: TypeAlias = Literal[ALERT_RULES + PREVENTION_EVENTS]  # type: ignore[valid-type]


Admin = allow("admin")


class NewSubscription(BaseModel):
    url: Text = Field(max_length=2000, description="http(s) endpoint that receives the POSTs")
    secret: Text | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="whsec_<base64 of 24-64 bytes>, or plain text used as the key's bytes;"
        " generated (whsec_) if unset",
    )
    districts: list[Annotated[Text, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=1000, description="district codes to receive; unset = all"
    )
    rules: list[Rule] | None = Field(
        default=None,
        description="alert rules and event names (score.deducted, licence.expiring…); unset = all",
    )

    @field_validator("url")
    @classmethod
    def _http_only(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return v

    @field_validator("secret")
    @classmethod
    def _usable_secret(cls, v: str | None) -> str | None:
        reason = webhooks.check_secret(v) if v is not None else None
        if reason:
            raise ValueError(reason)
        return v


@router.post(
    "/api/webhooks",
    status_code=201,
    response_model=NewWebhookSubscription,
    dependencies=[Admin],
)
async def create_webhook(request: Request, conn: DbConn, body: NewSubscription) -> JSONResponse:
    """Subscribe a URL; the answer holds the signing secret as ``whsec_…`` (shown only here:
    the key of the ``webhook-signature`` on every delivery). Targets on
    loopback, private or link-local addresses are refused unless on the allow-list."""
    guard: TargetGuard = request.app.state.webhook_guard
    try:
        await guard.check(body.url)
    except TargetRefused as exc:
        raise InvalidField("body.url", exc.reason) from None
    secret = body.secret or webhooks.new_secret()
    row = await webhooks.create_subscription(conn, body.url, secret, body.districts, body.rules)
    return json_response({**row, "secret": webhooks.shown_secret(secret)}, status_code=201)


@router.get("/api/webhooks", response_model=WebhookList, dependencies=[Admin])
async def list_webhooks(conn: DbConn) -> JSONResponse:
    """Active subscriptions, without their secrets."""
    return json_response({"webhooks": await webhooks.list_subscriptions(conn)})


@router.delete("/api/webhooks/{sub_id}", status_code=204, dependencies=[Admin])
async def delete_webhook(conn: DbConn, sub_id: SubId) -> Response:
    """Unsubscribe; nothing more is sent, and the delivery log stays readable."""
    if not await webhooks.deactivate(conn, sub_id):
        raise NotFound(f"webhook {sub_id} not found", [FieldError("id", "unknown")])
    return Response(status_code=204)


@router.get("/api/webhooks/{sub_id}/deliveries", response_model=DeliveryList, dependencies=[Admin])
async def list_deliveries(
    conn: DbConn,
    sub_id: SubId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> JSONResponse:
    """The subscription's deliveries, newest first: attempts, when due, delivered, last error."""
    rows = await webhooks.deliveries(conn, sub_id, limit, offset)
    if rows is None:
        raise NotFound(f"webhook {sub_id} not found", [FieldError("id", "unknown")])
    return json_response({"deliveries": rows})
