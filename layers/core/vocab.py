"""Controlled vocabularies shared by the schema's CHECK constraints, validation and the seed.

Keeping them in one module means a new kind is added in one place and the database, the API
and imports all agree.
"""

from __future__ import annotations

from typing import Final

#: Enterprises that produce, store, trade, use, transport or dispose of hazardous chemicals.
HAZMAT_CATEGORIES: Final = ("production", "storage", "trading", "use", "transport", "disposal")
#: Other supervised users (Ningbo counts schools, hospitals, labs … among its 7,046 entities).
OTHER_CATEGORIES: Final = ("school", "hospital", "laboratory", "research", "other_user")
ENTERPRISE_CATEGORIES: Final = HAZMAT_CATEGORIES + OTHER_CATEGORIES

HAZARD_UNIT_KINDS: Final = ("production", "storage")

#: Monitoring point kinds; gas limits follow GB/T 50493-2019, the others carry H/HH/L/LL.
MONITORING_KINDS: Final = (
    "gas_flammable",
    "gas_toxic",
    "oxygen",
    "temperature",
    "pressure",
    "level",
    "flow",
    "leak",
)

#: Zones tankers are judged against. ``designated_parking`` allows stops; the protected kinds
#: (school … water_source) forbid them; ``chemical_park`` outlines a park.
PROTECTED_ZONE_KINDS: Final = ("school", "hospital", "residential", "water_source")
ZONE_KINDS: Final = ("designated_parking", *PROTECTED_ZONE_KINDS, "chemical_park")

ROAD_CLASSES: Final = ("expressway", "arterial", "local")

ALERT_STATUSES: Final = ("new", "acknowledged", "disposed", "false_alarm")
HIDDEN_DANGER_STATUSES: Final = ("found", "rectifying", "rectified")
RISK_UNIT_METHODS: Final = ("LEC", "LS")
#: What a risk unit is (the seeds' "one map one book" registers): the diagram's legend and the
#: demo city's registers use these; "other" keeps imports of unknown kinds possible.
RISK_UNIT_KINDS: Final = (
    "process_unit",
    "reactor",
    "tank_farm",
    "warehouse",
    "loading_bay",
    "utilities",
    "other",
)
#: Types of control measures in a risk register (工程技术, 管理, 培训教育, 个体防护, 应急处置).
CONTROL_TYPES: Final = ("engineering", "management", "training", "ppe", "emergency")
#: Who may call the API (issue 8); what each one sees is decided in ``layers/access/roles.py``.
#: ``ingest`` is a machine's role (issue 18): it only posts fixes and readings.
ROLES: Final = ("admin", "regulator", "enterprise", "officer", "tile_reader", "ingest")
#: Roles whose keys carry a district list (unset = every district).
DISTRICT_ROLES: Final = ("regulator", "officer", "ingest")
#: Roles whose keys carry a carrier list (``vehicles.carrier``; unset = every carrier).
CARRIER_ROLES: Final = ("ingest",)
#: What an audit-log entry records: a row written (by the triggers of migration 0008), or a
#: throttle lockout of a client address or key prefix (issue 18, ``geo_api/throttle.py``).
AUDIT_ACTIONS: Final = ("insert", "update", "delete", "lockout")

#: GB 18218-2018 Table 2 hazard codes (J1–J5 acute toxicity, W1.x explosives, W2 flammable
#: gases … W11), plus toxic_gas for Table 3 substances; free text would make β look-ups miss.
HAZARD_CLASS_PATTERN: Final = (
    r"^(J[1-5]|W1\.[1-3]|W([1-4]|5\.[1-4]|6\.[12]|7\.[12]|8|9\.[12]|10|11)|toxic_gas|other)$"
)

#: Unified social credit code (GB 32100-2015): 18 characters from a 31-letter alphabet.
CREDIT_CODE_PATTERN: Final = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
CAS_PATTERN: Final = r"^[0-9]{2,7}-[0-9]{2}-[0-9]$"
UN_NUMBER_PATTERN: Final = r"^[0-9]{4}$"
#: UN model regulations class of a tanker's load, e.g. 3 or 2.1.
HAZMAT_CLASS_PATTERN: Final = r"^[1-9](\.[1-6])?$"
#: ``HH:MM-HH:MM`` windows separated by commas, e.g. ``07:00-18:00`` or ``22:00-06:00``.
ACTIVE_HOURS_PATTERN: Final = (
    r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]"
    r"(,([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9])*$"
)


def sql_in(values: tuple[str, ...]) -> str:
    """Render a vocabulary as a SQL ``IN (...)`` list for CHECK constraints (constants only)."""
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


#: Alert rules of the tanker engine. Both parking rules count as "illegal parking" for the
#: carrier's dynamic colour (docs/domain.md §3).
ALERT_RULES: Final = (
    "illegal_parking",
    "forbidden_zone_parking",
    "overspeed",
    "corridor_deviation",
)
ILLEGAL_PARKING_RULES: Final = ("illegal_parking", "forbidden_zone_parking")

# ---- the transport chain (issue 14: parties, qualifications, electronic waybills) ----------
#: GB 6944-2012 classes and divisions of dangerous goods (the UN model regulations' numbering):
#: a waybill names its goods' exact class or division; a bare class (2, 4, 5, 6) is allowed
#: where a division is not known, as the vehicles' register always allowed.
HAZMAT_CLASSES: Final = (
    "1",
    "1.1",
    "1.2",
    "1.3",
    "1.4",
    "1.5",
    "1.6",
    "2",
    "2.1",
    "2.2",
    "2.3",
    "3",
    "4",
    "4.1",
    "4.2",
    "4.3",
    "5",
    "5.1",
    "5.2",
    "6",
    "6.1",
    "6.2",
    "7",
    "8",
    "9",
)
#: What a hazmat vehicle carries its load in (常压罐, 压力罐, 低温罐, 罐式集装箱, 厢式/栏板).
TANK_TYPES: Final = ("atmospheric", "pressure", "cryogenic", "tank_container", "van")
#: People of a carrier a waybill names: the driver and the escort (押运员).
CREW_ROLES: Final = ("driver", "escort")
#: A waybill's lifecycle (layers/transport/waybills.py holds the allowed steps).
WAYBILL_STATES: Final = ("planned", "loading", "in_transit", "delivered", "cancelled")
#: What a waybill's history records: the parties' events, a refused loading (with the failed
#: checks), a state change asked through the transition route.
WAYBILL_EVENT_KINDS: Final = (
    "loading",
    "loaded",
    "unloading",
    "unloaded",
    "loading_refused",
    "transition",
)
#: Where an event came from: a party's key, the transition route, or derived from a stop.
WAYBILL_EVENT_SOURCES: Final = ("party", "api", "derived")
#: Road transport permit (道路运输证) numbers, licence numbers and certificate numbers are
#: free text from different provinces' formats, but never blank and never longer than this.
PERMIT_NUMBER_MAX: Final = 64
#: A resident identity card number (GB 11643-1999): 17 digits and a check character.
ID_CARD_PATTERN: Final = r"^[0-9]{17}[0-9X]$"
