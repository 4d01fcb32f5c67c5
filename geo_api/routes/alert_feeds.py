"""Alert feeds: live stream (SSE), CAP 1.2 XML and its Atom feed, statistics and evidence
(docs/architecture.md §4).

Mounted *before* ``routes.alerts``: ``/api/alerts/stream``, ``/api/alerts/stats``,
``/api/alerts/cap.atom`` and ``/api/alerts/{id}.cap`` would otherwise match
``/api/alerts/{alert_id}`` and fail as a bad id.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from geo_api.alert_stream import AlertBroadcaster, StreamFilter, Subscriber, TooManySubscribers
from geo_api.auth import TRANSPORT, CurrentCaller, allow
from geo_api.body import Text
from geo_api.db import DbConn
from geo_api.errors import BadRequest, FieldError, NotFound, error_responses
from geo_api.models.alerts import AlertStats
from geo_api.models.base import GeoJSONResponse, binary
from geo_api.models.streams import AlertEvent, EventStreamResponse
from geo_api.models.transport import Evidence
from geo_api.scope import check_object, district_filter
from geo_api.settings import AlertStreamSettings, CapSettings, Settings
from layers.alerts import cap, cap_atom, lifecycle
from layers.alerts import feeds as alert_feeds
from layers.alerts.cap_signature import CapSigner
from layers.alerts.stats import StatsQuery, alert_stats
from layers.core.vocab import ALERT_RULES, ALERT_STATUSES, DEPARTMENTS

router = APIRouter(tags=["alerts"])
Rule = Literal[ALERT_RULES]  # type: ignore[valid-type]
Department = Literal[DEPARTMENTS]  # type: ignore[valid-type]
#: Without credentials: the CAP signing certificate (receivers verify with it).
public_router = APIRouter(tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]
#: OASIS CAP 1.2 (IANA application/cap+xml).
CAP_XML = "application/cap+xml"
CommaList = Annotated[Text | None, Query(max_length=2000, description="comma-separated list")]


def _split(field: str, value: str | None, allowed: tuple[str, ...] | None) -> frozenset[str]:
    items = frozenset(x.strip() for x in (value or "").split(",") if x.strip())
    if allowed is not None:
        bad = sorted(items - set(allowed))
        if bad:
            reason = f"unknown {', '.join(bad)}; one of {', '.join(allowed)}"
            raise BadRequest(f"{field}: {reason}", [FieldError(field, reason)])
    return items


def _utc(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _event(feature: dict[str, Any]) -> bytes:
    p = feature["properties"]
    data = json.dumps(feature, ensure_ascii=False, separators=(",", ":"))
    return f"id: {p['id']}:{p['revision']}\nevent: alert\ndata: {data}\n\n".encode()


async def _replay_from(
    conn: DbConn, last_event_id: str | None, since: dt.datetime | None
) -> dt.datetime | None:
    """Last-Event-ID (a reconnecting browser) wins over ``since=`` (a first connection)."""
    if last_event_id:
        head, _, rev = last_event_id.strip().partition(":")
        if not head.isdigit() or not (rev or "0").isdigit():
            reason = "must be <alert id>:<revision>"
            raise BadRequest(f"Last-Event-ID: {reason}", [FieldError("Last-Event-ID", reason)])
        try:
            return await alert_feeds.replay_start(conn, int(head), int(rev or 0))
        except lifecycle.AlertNotFound:
            return None  # an alert since deleted: nothing to anchor on, stream live only
    return _utc(since) if since else None


async def _events(
    hub: AlertBroadcaster,
    sub: Subscriber,
    replay: list[dict[str, Any]],
    keepalive_s: float,
) -> AsyncIterator[bytes]:
    try:
        yield b"retry: 3000\n\n"
        for feature in replay:
            yield _event(feature)
        while True:
            item = await sub.next(keepalive_s)
            if item is None:
                yield b": keep-alive\n\n"
                continue
            kind, value = item
            if kind == "closed":
                return
            if kind == "lagged":
                yield f'event: lagged\ndata: {{"dropped": {int(value)}}}\n\n'.encode()
            else:
                yield _event(value)
    finally:
        hub.unsubscribe(sub)


@router.get(
    "/api/alerts/stream",
    response_model=AlertEvent,  # one event of the stream
    response_class=EventStreamResponse,
    dependencies=[allow(*TRANSPORT)],
)
async def alert_stream(
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    district: CommaList = None,
    rule: CommaList = None,
    status: CommaList = None,
    since: Annotated[dt.datetime | None, Query(description="replay changes since")] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> Response:
    """Server-Sent Events of alert changes; ``id: <alert id>:<revision>``, ``event: alert``.
    A regulator's or officer's stream carries only their districts' alerts."""
    settings: AlertStreamSettings = request.app.state.settings.alert_stream
    hub: AlertBroadcaster = request.app.state.alert_stream
    districts = district_filter(caller, _split("district", district, None))
    flt = StreamFilter(
        frozenset(districts or ()),
        _split("rule", rule, ALERT_RULES),
        _split("status", status, ALERT_STATUSES),
    )
    try:
        sub = hub.subscribe(flt)  # before the replay read, so no change falls in between
    except TooManySubscribers as exc:  # a capacity limit, not the client's mistake: retry later
        body = {"detail": str(exc), "errors": [{"field": "stream", "reason": "server busy"}]}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    try:
        start = await _replay_from(conn, last_event_id, since)
        replay: list[dict[str, Any]] = []
        if start is not None and settings.replay_max:
            floor = dt.datetime.now(dt.UTC) - dt.timedelta(hours=settings.replay_max_age_h)
            found = await alert_feeds.alerts_changed_since(
                conn, max(start, floor), settings.replay_max
            )
            replay = [f for f in found if flt.matches(f["properties"])]
    except BaseException:
        hub.unsubscribe(sub)
        raise
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _events(hub, sub, replay, settings.keepalive_s),
        media_type="text/event-stream",
        headers=headers,
    )


@router.get("/api/alerts/stats", response_model=AlertStats, dependencies=[allow(*TRANSPORT)])
async def alert_statistics(
    conn: DbConn,
    caller: CurrentCaller,
    from_: Annotated[dt.datetime | None, Query(alias="from")] = None,
    to: dt.datetime | None = None,
    district: CommaList = None,
    rule: Annotated[Rule | None, Query(description="one warning type")] = None,
    department: Annotated[Department | None, Query(description="one department's queue")] = None,
) -> JSONResponse:
    """Time to acknowledge / dispose (median, p90), disposal rates (the figure cities publish,
    95–97 % disposed), by district, carrier, warning type and department, over any period."""
    chosen = district_filter(caller, _split("district", district, None))
    districts = tuple(chosen) if chosen is not None else None
    q = StatsQuery(
        _utc(from_) if from_ else None,
        _utc(to) if to else None,
        districts,
        rule=rule,
        department=department,
    )
    if q.start and q.end and q.end <= q.start:
        raise BadRequest("to: must be after from", [FieldError("to", "must be after from")])
    return JSONResponse(await alert_stats(conn, q))


def cap_source(settings: CapSettings) -> cap.CapSource:
    """Sender, sender names and web link of our CAP messages, as configured (GEORISK_CAP_*)."""
    return cap.CapSource(
        sender=settings.sender,
        sender_name_zh=settings.sender_name_zh,
        sender_name_en=settings.sender_name_en,
        web_url=settings.web_url,
    )


def _not_modified(request: Request, etag: str, last_modified: dt.datetime) -> bool:
    """RFC 9110 §13.1: If-None-Match decides when present (weak comparison, as for GET);
    otherwise If-Modified-Since, whose unreadable dates are ignored."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag in tags
    ims = request.headers.get("if-modified-since")
    if ims is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        return False  # not an HTTP-date (those are GMT)
    return last_modified.replace(microsecond=0) <= since


_ATOM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **binary(cap_atom.ATOM_TYPE, "Atom feed"),
    304: {"description": "not modified since the ETag / Last-Modified sent"},
}


@router.get(
    "/api/alerts/cap.atom",
    response_class=Response,
    responses=_ATOM_RESPONSES,
    dependencies=[allow(*TRANSPORT)],
)
async def cap_atom_feed(
    request: Request,
    conn: DbConn,
    caller: CurrentCaller,
    district: Annotated[Text | None, Query(max_length=64, description="district code")] = None,
    limit: Annotated[int | None, Query(ge=1, description="most entries (capped)")] = None,
) -> Response:
    """An Atom feed (RFC 4287) of the alerts' current CAP messages, newest change first, for
    systems that poll: each entry links to its ``.cap``. A regulator's or officer's feed holds
    only their districts (another district: 403). ETag / Last-Modified: a poll with
    If-None-Match or If-Modified-Since answers 304 while nothing changed."""
    settings: CapSettings = request.app.state.settings.cap
    districts = district_filter(caller, [district] if district else None)
    if district and not await alert_feeds.district_exists(conn, district):
        raise NotFound(f"district {district} not found", [FieldError("district", "unknown")])
    size = min(limit or settings.feed_limit, settings.feed_max)
    features = await alert_feeds.latest_alerts(conn, districts, size)
    links = cap_atom.FeedLinks(str(request.url), str(request.base_url))
    body = cap_atom.build_feed(features, cap_source(settings), links, districts)
    last_modified = cap_atom.updated_of(features)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Last-Modified": email.utils.format_datetime(last_modified.astimezone(dt.UTC), True),
        # Scoped by the caller's key: no shared cache may keep it; clients revalidate (304).
        "Cache-Control": "private, no-cache",
    }
    if _not_modified(request, etag, last_modified):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=cap_atom.ATOM_TYPE, headers=headers)


@router.get(
    "/api/alerts/{alert_id}.cap",
    response_class=Response,
    responses=binary(CAP_XML, "an OASIS CAP 1.2 message"),
    dependencies=[allow(*TRANSPORT)],
)
async def alert_cap(
    request: Request, conn: DbConn, caller: CurrentCaller, alert_id: AlertId
) -> Response:
    """The alert's current revision as an OASIS CAP 1.2 message (Alert, Update or Cancel),
    signed (enveloped XML-DSig) when a key is configured: verify with
    ``/api/cap/certificate.pem``."""
    await check_object(conn, caller, "alert", alert_id)
    feature = await lifecycle.get_alert(conn, alert_id)
    zone_id = feature["properties"].get("zone_id")
    ring = await cap.zone_ring(conn, int(zone_id)) if zone_id else None
    source = cap_source(request.app.state.settings.cap)
    body = cap.to_bytes(cap.build_cap(feature, source, zone_ring=ring))
    signer: CapSigner | None = request.app.state.cap_signer
    if signer is not None:  # enveloped XML-DSig (CAP 1.2 §3.3.2.1), issue 18 §6
        body = signer.sign(body)
    return Response(body, media_type=CAP_XML)


@public_router.get(
    "/api/cap/certificate.pem",
    response_class=Response,
    responses={
        **binary("application/x-pem-file", "the X.509 certificate (PEM)"),
        **error_responses(404),
    },
)
async def cap_certificate(request: Request) -> Response:
    """The X.509 certificate CAP messages are signed with (PEM), for receivers to verify
    against; public, like any certificate. 404 when this server does not sign."""
    signer: CapSigner | None = request.app.state.cap_signer
    if signer is None:
        raise NotFound("CAP messages are not signed here: no signing key is configured")
    return Response(
        signer.certificate_pem,
        media_type="application/x-pem-file",
        headers={"Content-Disposition": 'inline; filename="georisk-cap.pem"'},
    )


@router.get(
    "/api/alerts/{alert_id}/evidence",
    response_model=Evidence,
    response_class=GeoJSONResponse,
    dependencies=[allow(*TRANSPORT)],
)
async def alert_evidence(
    request: Request, conn: DbConn, caller: CurrentCaller, alert_id: AlertId
) -> JSONResponse:
    """Track 15 min either side of the episode, the stop and the zone, as GeoJSON (days past
    retention come from the GeoParquet archive)."""
    await check_object(conn, caller, "alert", alert_id)
    settings: Settings = request.app.state.settings
    archive = settings.lifecycle.resolved_archive_dir(settings.db.data_dir)
    body = await alert_feeds.evidence(conn, alert_id, archive)  # AlertNotFound: a 404
    return JSONResponse(body, media_type="application/geo+json")
