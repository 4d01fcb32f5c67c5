"""OASIS CAP 1.2 messages for tanker alerts (docs/domain.md §3: the standard wire format).

Every alert revision is one CAP message with its own identifier
(``georisk-alert-<id>-r<revision>``). Revision 1 is an ``Alert``; later revisions are
``Update`` messages and a false-alarm disposal is a ``Cancel``, both referencing the original
Alert by "sender,identifier,sent", so a downstream system can thread them.

The mapping from our alert to CAP's qualifiers lives in :data:`CAP_MAPPING` and the functions
right below it, and nowhere else:

=============  ====================================================================
msgType        status false_alarm → Cancel; revision 1 → Alert; otherwise Update
urgency        closed (disposed / false_alarm) → Past; episode still going on →
               Immediate; episode over but not yet closed → Expected
severity       the engine's per-rule severity (forbidden-zone stops and overspeed
               > 120 % of the limit are ``severe``, others ``moderate``) capitalised;
               anything else → Unknown
certainty      new (machine detection, unconfirmed) → Likely; acknowledged or
               disposed (an officer confirmed it) → Observed; false_alarm → Unlikely
scope          Restricted (plates and carriers are for the regulator), with restriction
category       Transport
=============  ====================================================================
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"
CST: Final = dt.timezone(dt.timedelta(hours=8))
#: Radius of the circle around the stop or alert point: the stop detector's 200 m.
CIRCLE_RADIUS_KM: Final = 0.2
#: A zone ring longer than this is simplified before it goes on the wire.
MAX_RING_POINTS: Final = 500


@dataclass(frozen=True)
class CapSource:
    """Who sends: CAP's sender must have no spaces, commas or ampersands. Deployments set these
    through ``GEORISK_CAP_*`` (geo_api/settings.py CapSettings); the defaults here are the same.

    ``web_url`` is a template for each ``<info>``'s ``<web>`` link, ``{alert_id}`` filled in;
    None leaves ``<web>`` out."""

    sender: str = "georisk@hazmat-regulator.gov.cn"
    sender_name_zh: str = "危险化学品风险监测预警平台"
    sender_name_en: str = "Hazardous Chemicals Risk Monitoring Platform"
    restriction: str = "危化品运输监管部门 / hazmat transport regulators only"
    web_url: str | None = None

    def web(self, alert_id: int) -> str | None:
        return self.web_url.format(alert_id=alert_id) if self.web_url else None


@dataclass(frozen=True)
class RuleText:
    event_zh: str
    event_en: str
    instruction_zh: str
    instruction_en: str


CAP_MAPPING: Final[dict[str, Any]] = {
    "category": "Transport",
    "status": "Actual",
    "scope": "Restricted",
    "severity": {
        "extreme": "Extreme",
        "severe": "Severe",
        "moderate": "Moderate",
        "minor": "Minor",
    },
    "certainty": {
        "new": "Likely",
        "acknowledged": "Observed",
        "disposed": "Observed",
        "false_alarm": "Unlikely",
    },
}

RULES: Final[dict[str, RuleText]] = {
    "illegal_parking": RuleText(
        "危化品运输车辆违规停车",
        "Hazmat tanker illegal parking",
        "核实车辆位置，责令驶离至指定危化品停车场，并记录处置结果。",
        "Verify the vehicle's position, order it to a designated hazmat parking area and "
        "record the outcome.",
    ),
    "forbidden_zone_parking": RuleText(
        "危化品运输车辆在禁停区域停车",
        "Hazmat tanker stopped in a forbidden zone",
        "立即联系驾驶员驶离禁停区域，必要时现场处置，并记录处置结果。",
        "Contact the driver at once to leave the forbidden zone, send staff if needed and "
        "record the outcome.",
    ),
    "overspeed": RuleText(
        "危化品运输车辆超速",
        "Hazmat tanker overspeed",
        "提醒驾驶员减速，核实超速情况并依规处理。",
        "Warn the driver to slow down, verify the episode and handle it under the rules.",
    ),
    "corridor_deviation": RuleText(
        "危化品运输车辆偏离规定路线",
        "Hazmat tanker off its planned route",
        "核实车辆偏离原因，责令按规定路线行驶。",
        "Verify why the vehicle left its route and order it back onto the planned route.",
    ),
    # The terminals' own alarm bits (JT/T 808, layers/transport/warnings/terminal_alarms.py).
    "terminal_emergency": RuleText(
        "危化品运输车辆紧急报警",
        "Hazmat tanker emergency alarm",
        "立即联系驾驶员和押运员核实情况，必要时通知应急救援力量。",
        "Call the driver and escort at once, verify the situation and alert rescue services "
        "if needed.",
    ),
    "terminal_overspeed": RuleText(
        "车载终端超速报警",
        "Terminal overspeed alarm",
        "提醒驾驶员减速，核实超速情况并依规处理。",
        "Warn the driver to slow down, verify the episode and handle it under the rules.",
    ),
    "terminal_fatigue": RuleText(
        "车载终端疲劳驾驶报警",
        "Terminal fatigue driving alarm",
        "责令驾驶员就近安全停车休息，并记录处置结果。",
        "Order the driver to stop safely and rest, and record the outcome.",
    ),
    "terminal_antenna_cut": RuleText(
        "车载终端GNSS天线断开",
        "Terminal GNSS antenna cut",
        "联系运输企业核实定位设备状态，排查人为屏蔽定位。",
        "Ask the carrier to check the positioning equipment and rule out deliberate blinding.",
    ),
    "terminal_power_cut": RuleText(
        "车载终端主电源断电",
        "Terminal main power cut",
        "联系运输企业核实终端断电原因，排查人为断电。",
        "Ask the carrier why the terminal lost main power and rule out deliberate power cuts.",
    ),
    # Fatigue and positioning gap (layers/transport/warnings/fatigue.py, positioning_gap.py).
    "fatigue_continuous": RuleText(
        "危化品运输车辆连续驾驶超时（疲劳驾驶）",
        "Hazmat vehicle driven over 4 h without a 20-minute rest",
        "责令驾驶员就近安全停车休息不少于20分钟，核实驾驶记录并依规处理。",
        "Order the driver to stop safely and rest at least 20 minutes, check the driving "
        "record and handle it under the rules.",
    ),
    "fatigue_daily": RuleText(
        "危化品运输车辆当日累计驾驶超时",
        "Hazmat vehicle over its daily driving time",
        "联系运输企业核实驾驶员排班，安排换班或休息。",
        "Ask the carrier to check the driver's schedule and arrange a relief driver or rest.",
    ),
    "positioning_gap": RuleText(
        "在途危化品运输车辆定位中断",
        "Loaded hazmat vehicle stopped reporting its position",
        "联系运输企业核实定位中断原因及车辆行驶情况，排查人为屏蔽或断电。",
        "Ask the carrier why the vehicle stopped reporting and where it went, and rule out "
        "deliberate blinding or power cuts.",
    ),
    # The waybill models (layers/transport/warnings/{unwaybilled,loading_checks,escort,
    # waybill_corridor,waybill_stops}.py).
    "moving_without_waybill": RuleText(
        "危化品运输车辆无电子运单载货行驶",
        "Hazmat vehicle moving loaded without a waybill",
        "核实车辆装载情况和电子运单，责令停车接受检查并依规处理。",
        "Verify the load and the waybill, stop the vehicle for inspection and handle it "
        "under the rules.",
    ),
    "loading_check_failed": RuleText(
        "装货查验不合格",
        "Loading checks failed",
        "核实车辆证照、人员资格和电子运单，督促装货单位拒绝装载并记录处置结果。",
        "Verify the vehicle's papers, the crew's qualifications and the waybill, make sure "
        "the load is refused and record the outcome.",
    ),
    "no_escort": RuleText(
        "危化品运输车辆无押运员",
        "Hazmat vehicle without an escort",
        "联系运输企业核实押运人员配备，责令配齐押运员后方可继续运输。",
        "Ask the carrier about the escort and let the vehicle go on only with one on board.",
    ),
    "waybill_corridor_deviation": RuleText(
        "危化品运输车辆偏离运单路线",
        "Hazmat vehicle off its waybill's route",
        "核实车辆偏离运单申报路线的原因，责令按申报路线行驶。",
        "Verify why the vehicle left its declared route and order it back onto it.",
    ),
    "undeclared_stop": RuleText(
        "危化品运输车辆在非申报地点长时间停留",
        "Hazmat vehicle stopped long at an undeclared place",
        "联系驾驶员核实停留原因，责令驶往指定停车场或目的地。",
        "Call the driver about the stop and order the vehicle to a designated lot or its "
        "destination.",
    ),
    "wrong_destination": RuleText(
        "危化品运输车辆到达非申报收货单位",
        "Hazmat vehicle at an enterprise other than the declared consignee",
        "核实货物去向，排查非法交易或非法装卸，并记录处置结果。",
        "Verify where the goods go, rule out illegal sale or unloading and record the outcome.",
    ),
}


def msg_type(props: dict[str, Any]) -> str:
    if props["status"] == "false_alarm":
        return "Cancel"
    return "Alert" if int(props["revision"]) <= 1 else "Update"


def urgency(props: dict[str, Any]) -> str:
    if props["status"] in ("disposed", "false_alarm"):
        return "Past"
    return "Immediate" if props.get("active") else "Expected"


def severity(props: dict[str, Any]) -> str:
    table: dict[str, str] = CAP_MAPPING["severity"]
    return table.get(str(props.get("severity")), "Unknown")


def certainty(props: dict[str, Any]) -> str:
    table: dict[str, str] = CAP_MAPPING["certainty"]
    return table.get(str(props.get("status")), "Unknown")


def cap_time(value: str | dt.datetime | None) -> str | None:
    """CAP's dateTime: ``YYYY-MM-DDThh:mm:ss+08:00`` — no fraction, no "Z" (the spec forbids it)."""
    if value is None:
        return None
    t = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(CST).replace(microsecond=0).isoformat()


def identifier(alert_id: int, revision: int) -> str:
    return f"georisk-alert-{alert_id}-r{revision}"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def _ring_text(ring: list[list[float]]) -> str:
    """CAP polygon: "lat,lon" pairs, space separated, closed (first = last), ≥ 4 pairs."""
    pts = [(float(p[1]), float(p[0])) for p in ring]
    if pts and pts[0] != pts[-1]:
        pts.append(pts[0])
    return " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in pts)


def _duration(props: dict[str, Any]) -> str:
    seconds = props.get("duration_s")
    return "—" if seconds is None else f"{float(seconds) / 60:.0f}"


def _texts(props: dict[str, Any], lang: str) -> tuple[str, str, str, str]:
    """event, headline, description, instruction in one language."""
    rule = RULES.get(props["rule"]) or RuleText(props["rule"], props["rule"], "", "")
    plate, carrier = props.get("plate") or "?", props.get("carrier") or "?"
    zone = props.get("zone_name")
    start, end = cap_time(props["episode_start"]), cap_time(props.get("episode_end"))
    if lang == "zh-CN":
        where = f"，地点：{zone}" if zone else ""
        headline = f"{rule.event_zh}：{plate}（{carrier}）" + (f"，{zone}" if zone else "")
        description = (
            f"{rule.event_zh}：车辆{plate}（承运单位：{carrier}）{where}，"
            f"开始于{start}，"
            + (f"结束于{end}，" if end else "仍在持续，")
            + f"持续约{_duration(props)}分钟。处置状态：{props['status']}。"
        )
        if props.get("note"):
            description += f"处置说明：{props['note']}"
        return rule.event_zh, headline[:160], description, rule.instruction_zh
    where = f" at {zone}" if zone else ""
    headline = f"{plate} ({carrier}): {rule.event_en}{where}"
    description = (
        f"Vehicle {plate} (carrier {carrier}): {rule.event_en.lower()}{where}, "
        f"from {start}"
        + (f" to {end}" if end else ", still going on")
        + f", about {_duration(props)} min. Status: {props['status']}."
    )
    if props.get("note"):
        description += f" Officer's note: {props['note']}"
    return rule.event_en, headline[:160], description, rule.instruction_en


def headline_and_description(props: dict[str, Any], lang: str) -> tuple[str, str]:
    """The CAP message's headline and description in ``lang`` (the Atom feed's entry text)."""
    _, headline, description, _ = _texts(props, lang)
    return headline, description


def _info(
    root: ET.Element,
    feature: dict[str, Any],
    lang: str,
    source: CapSource,
    zone_ring: list[list[float]] | None,
) -> None:
    props = feature["properties"]
    event, headline, description, instruction = _texts(props, lang)
    info = _sub(root, "info")
    _sub(info, "language", lang)
    _sub(info, "category", CAP_MAPPING["category"])
    _sub(info, "event", event)
    _sub(info, "urgency", urgency(props))
    _sub(info, "severity", severity(props))
    _sub(info, "certainty", certainty(props))
    _sub(info, "effective", cap_time(props["episode_start"]))
    _sub(info, "onset", cap_time(props["episode_start"]))
    if props.get("dispose_deadline") and props["status"] in ("new", "acknowledged"):
        _sub(info, "expires", cap_time(props["dispose_deadline"]))
    _sub(info, "senderName", source.sender_name_zh if lang == "zh-CN" else source.sender_name_en)
    _sub(info, "headline", headline)
    _sub(info, "description", description)
    _sub(info, "instruction", instruction)
    web = source.web(int(props["id"]))
    if web:  # CAP 1.2 order: <web> right after <instruction>, before <parameter>
        _sub(info, "web", web)
    params = {
        "plate": props.get("plate"),
        "carrier": props.get("carrier"),
        "rule": props["rule"],
        "zone": props.get("zone_name"),
        "episode_start": cap_time(props["episode_start"]),
        "episode_end": cap_time(props.get("episode_end")),
        "district": props.get("district"),
        "alert_id": str(props["id"]),
        "revision": str(props["revision"]),
        "status": props["status"],
    }
    for name, value in params.items():
        if value is not None:
            p = _sub(info, "parameter")
            _sub(p, "valueName", name)
            _sub(p, "value", str(value))
    area = _sub(info, "area")
    zone = props.get("zone_name")
    district = props.get("district")
    desc = zone or (f"{district} " if district else "") + (
        "路侧停车点" if lang == "zh-CN" else "roadside location"
    )
    _sub(area, "areaDesc", desc)
    if zone_ring:
        _sub(area, "polygon", _ring_text(zone_ring))
    geom = feature.get("geometry")
    if geom and geom.get("type") == "Point":
        lon, lat = geom["coordinates"][:2]
        _sub(area, "circle", f"{float(lat):.6f},{float(lon):.6f} {CIRCLE_RADIUS_KM}")


def build_cap(
    feature: dict[str, Any],
    source: CapSource | None = None,
    zone_ring: list[list[float]] | None = None,
) -> ET.Element:
    """The CAP ``alert`` element for one alert Feature (as ``GET /api/alerts/{id}`` gives it)."""
    source = source or CapSource()
    props = feature["properties"]
    alert_id, revision = int(props["id"]), int(props["revision"])
    kind = msg_type(props)
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", identifier(alert_id, revision))
    _sub(root, "sender", source.sender)
    sent = props["created_at"] if revision <= 1 else props["updated_at"]
    _sub(root, "sent", cap_time(sent))
    _sub(root, "status", CAP_MAPPING["status"])
    _sub(root, "msgType", kind)
    _sub(root, "scope", CAP_MAPPING["scope"])
    _sub(root, "restriction", source.restriction)
    if kind == "Cancel":
        _sub(root, "note", props.get("note") or "false alarm")
    if kind != "Alert":
        original = f"{source.sender},{identifier(alert_id, 1)},{cap_time(props['created_at'])}"
        _sub(root, "references", original)
    _sub(root, "incidents", f"georisk-alert-{alert_id}")
    for lang in ("zh-CN", "en-US"):
        _info(root, feature, lang, source, zone_ring)
    return root


def to_bytes(root: ET.Element) -> bytes:
    ET.register_namespace("", CAP_NS)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


async def zone_ring(conn: AsyncConnection[Any], zone_id: int) -> list[list[float]] | None:
    """Outer ring of the zone's largest polygon, simplified past MAX_RING_POINTS vertices."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        """
        SELECT ST_AsGeoJSON(CASE WHEN ST_NPoints(r) > %(max)s
                                 THEN ST_SimplifyPreserveTopology(r, 0.0001) ELSE r END, 6)::json
        FROM (SELECT ST_ExteriorRing(d.geom) AS r
              FROM zones z, ST_Dump(z.geom) d WHERE z.id = %(id)s
              ORDER BY ST_Area(d.geom) DESC LIMIT 1) t
        """,
        {"id": zone_id, "max": MAX_RING_POINTS},
    )
    row = await cur.fetchone()
    if row is None or row[0] is None:
        return None
    coords: list[list[float]] = row[0]["coordinates"]
    return coords if len(coords) >= 4 else None
