"""An Atom feed (RFC 4287) of CAP messages, for systems that poll rather than subscribe.

It is an index feed, as CAP-over-Atom practice has it: each entry stands for one CAP message
— an alert's current revision — and links to it (``rel="alternate"``,
``type="application/cap+xml"``, the same ``/api/alerts/{id}.cap`` a person would fetch, signed
when signing is configured) instead of embedding it, so a signature is checked on the very
bytes it was made over and the feed stays small. A few CAP fields ride along in the entry as
extension elements in the CAP namespace (identifier, msgType, urgency, severity, certainty),
so a poller can decide what to fetch without fetching everything.

Identity: an entry's ``id`` is a name-based UUID URN (RFC 4122 v5) of the CAP message's
"sender,identifier"; every revision is its own CAP message (``…-r2`` is an ``Update``
referencing ``…-r1``), so a revision appears as a new entry and pollers that dedupe by id
fetch it. Entries are newest change first.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from lxml import etree

from layers.alerts import cap

ATOM_NS: Final = "http://www.w3.org/2005/Atom"
ATOM_TYPE: Final = "application/atom+xml"
_NSMAP: Final = {None: ATOM_NS, "cap": cap.CAP_NS}
#: ``updated`` of a feed with no entries: a fixed time, so an empty feed keeps its ETag.
EMPTY_UPDATED: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class FeedLinks:
    """Where things are, as the caller reached this server."""

    self_url: str  # this feed, with its query
    base_url: str  # the server's root, ending in "/"

    def cap(self, alert_id: int) -> str:
        return f"{self.base_url}api/alerts/{alert_id}.cap"


def _urn(*parts: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, ",".join(parts)).urn


def _el(parent: Any, tag: str, text: str | None = None, ns: str = ATOM_NS, **attrs: str) -> Any:
    el = etree.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def _time(value: str | dt.datetime) -> str:
    """RFC 3339 as CAP writes it (``+08:00``, whole seconds): valid for Atom too."""
    out = cap.cap_time(value)
    assert out is not None
    return out


def updated_of(features: Sequence[dict[str, Any]]) -> dt.datetime:
    """The feed's ``updated``: its newest entry's, or EMPTY_UPDATED (also Last-Modified)."""
    times = [dt.datetime.fromisoformat(f["properties"]["updated_at"]) for f in features]
    newest = max(times, default=EMPTY_UPDATED)
    return newest if newest.tzinfo else newest.replace(tzinfo=dt.UTC)


def _entry(feed: Any, feature: dict[str, Any], source: cap.CapSource, links: FeedLinks) -> None:
    props = feature["properties"]
    alert_id, revision = int(props["id"]), int(props["revision"])
    ident = cap.identifier(alert_id, revision)
    headline, description = cap.headline_and_description(props, "en-US")
    entry = _el(feed, "entry")
    _el(entry, "id", _urn(source.sender, ident))
    _el(entry, "title", headline)
    _el(entry, "updated", _time(props["updated_at"]))
    _el(entry, "published", _time(props["created_at"]))
    _el(entry, "summary", description)
    _el(entry, "link", rel="alternate", type="application/cap+xml", href=links.cap(alert_id))
    web = source.web(alert_id)
    if web:
        _el(entry, "link", rel="related", type="text/html", href=web)
    rule = str(props["rule"])
    text = cap.RULES.get(rule)
    _el(entry, "category", term=rule, label=text.event_en if text else rule)
    for tag, value in (
        ("identifier", ident),
        ("msgType", cap.msg_type(props)),
        ("urgency", cap.urgency(props)),
        ("severity", cap.severity(props)),
        ("certainty", cap.certainty(props)),
    ):
        _el(entry, tag, value, ns=cap.CAP_NS)


def build_feed(
    features: Sequence[dict[str, Any]],
    source: cap.CapSource,
    links: FeedLinks,
    districts: Sequence[str] | None,
) -> bytes:
    """The feed document for ``features`` (newest change first), of ``districts`` (None: all)."""
    scope = ",".join(districts) if districts is not None else "*"
    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap=_NSMAP)
    _el(feed, "id", _urn(source.sender, "cap-atom", scope))
    where = "all districts" if districts is None else f"districts {scope or '(none)'}"
    _el(feed, "title", f"{source.sender_name_en}: CAP alerts, {where}")
    _el(feed, "updated", _time(updated_of(features)))
    author = _el(feed, "author")
    _el(author, "name", source.sender_name_en)
    _el(feed, "link", rel="self", type=ATOM_TYPE, href=links.self_url)
    _el(feed, "generator", "GeoRisk")
    for feature in features:
        _entry(feed, feature, source, links)
    out: bytes = etree.tostring(feed, encoding="utf-8", xml_declaration=True)
    return out
