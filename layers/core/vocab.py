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
#: ``hazmat_restricted`` closes an area to hazmat vehicles during its ``active_hours`` (a city
#: centre by day); ``washing_station`` is where a tank is cleaned between incompatible loads
#: (issue 14 item 3: layers/transport/warnings/).
ZONE_KINDS: Final = (
    "designated_parking",
    *PROTECTED_ZONE_KINDS,
    "chemical_park",
    "hazmat_restricted",
    "washing_station",
)

ROAD_CLASSES: Final = ("expressway", "arterial", "local")

ALERT_STATUSES: Final = ("new", "acknowledged", "disposed", "false_alarm")
#: A hidden danger's states. ``rectification_reported``: the enterprise says a MAJOR danger is
#: rectified and gave evidence; only a regulator's acceptance moves it on to ``rectified``
#: (closed, 销号), a rejection back to ``rectifying`` (docs/domain.md §5).
HIDDEN_DANGER_STATUSES: Final = ("found", "rectifying", "rectification_reported", "rectified")
#: Production safety accidents by grade (生产安全事故报告和调查处理条例, art. 3): 一般 general,
#: 较大 larger, 重大 major, 特别重大 especially major.
ACCIDENT_GRADES: Final = ("general", "larger", "major", "especially_major")
#: What a regulator did about an enterprise on the daily bulletin.
BULLETIN_ACTIONS: Final = ("interview", "inspection", "enforcement", "other")
#: The departments a bulletin entry is for (docs/domain.md §5, daily bulletin).
DEPARTMENTS: Final = (
    "emergency_management",
    "transport",
    "traffic_police",
    "market_regulation",
)
BULLETIN_LISTS: Final = ("key", "suggested")
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
#: Terminal alarms (JT/T 808 alarm flag bits, issue 14 item 3) are alerts of their own kind,
#: one rule per alarm, so two alarms starting on the same fix are two alerts.
TERMINAL_ALARM_RULES: Final = (
    "terminal_emergency",
    "terminal_overspeed",
    "terminal_fatigue",
    "terminal_antenna_cut",
    "terminal_power_cut",
)
#: The warning models of the transport chain (issue 14 item 3), one module each under
#: layers/transport/warnings/ (its source and default thresholds named there).
WARNING_MODEL_RULES: Final = (
    "moving_without_waybill",
    "loading_check_failed",
    "no_escort",
    "waybill_corridor_deviation",
    "undeclared_stop",
    "wrong_destination",
    "fatigue_continuous",
    "fatigue_daily",
    "restricted_hours",
    "positioning_gap",
    "mixed_loading",
)
ALERT_RULES: Final = (
    "illegal_parking",
    "forbidden_zone_parking",
    "overspeed",
    "corridor_deviation",
    *TERMINAL_ALARM_RULES,
    *WARNING_MODEL_RULES,
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

#: GB 18218-2018 Table 2 hazard codes (the standard's vocabulary for a substance's classes).
GB18218_CLASSES: Final = (
    "J1", "J2", "J3", "J4", "J5",
    "W1.1", "W1.2", "W1.3", "W2", "W3", "W4",
    "W5.1", "W5.2", "W5.3", "W5.4", "W6.1", "W6.2", "W7.1", "W7.2",
    "W8", "W9.1", "W9.2", "W10", "W11",
)  # fmt: skip

#: MEM 2018 risk diagnosis guide (应急〔2018〕19号): circumstances that rate an enterprise red
#: whatever its score, as codes of ``enterprise_findings`` (docs/domain.md §2.2). The official
#: list is NOT in our reference material: only the guide's example quoted in DOMAIN.md §2.2 is
#: shipped as a code of its own; ``other_direct_red`` records any other circumstance of the
#: official list, named in the finding's evidence.
DIRECT_RED_FINDINGS: Final[dict[str, tuple[str, str]]] = {
    "unit_not_designed_not_diagnosed": (
        "在役装置未经正规设计且未进行安全设计诊断",
        "in-service unit never formally designed and never safety-diagnosed",
    ),
    "other_direct_red": (
        "指南所列其他直接判定为红色的情形(见证据说明)",
        "another direct-red circumstance of the guide (named in the evidence)",
    ),
}
FINDING_STATES: Final = ("open", "closed")

#: 安监总管三〔2017〕121号, 化工和危险化学品生产经营单位重大生产安全事故隐患判定标准(试行): its 20
#: items, the vocabulary that classes a hidden danger as major (docs/domain.md §2.2). Short
#: titles written for this product from the items' subjects (DOMAIN.md §2.2 quotes items 4 and
#: 5); check the wording against the official text before citing it in enforcement.
MAJOR_HIDDEN_DANGER_CRITERIA: Final[dict[str, tuple[str, str]]] = {
    "MHD01": (
        "主要负责人和安全管理人员未依法考核合格",
        "principal or safety managers not certified as the law requires",
    ),
    "MHD02": ("特种作业人员未持证上岗", "special-operations staff working without a certificate"),
    "MHD03": (
        "“两重点一重大”装置、设施外部安全防护距离不符合要求",
        "external safety distance of key processes/substances/major hazard units not met",
    ),
    "MHD04": (
        "重点监管危险化工工艺装置未实现自动化控制或紧急停车",
        "key supervised process without automatic control or emergency shutdown in use",
    ),
    "MHD05": (
        "一级、二级重大危险源罐区未实现紧急切断或未配独立安全仪表系统",
        "grade 1/2 major-hazard tank farm without emergency shut-off (or required SIS)",
    ),
    "MHD06": (
        "全压力式液化烃储罐未设注水措施",
        "fully pressurised LPG tanks without water injection",
    ),
    "MHD07": (
        "液化烃、液氨、液氯等充装未使用万向管道充装系统",
        "liquefied hydrocarbon, ammonia or chlorine loading without articulated loading arms",
    ),
    "MHD08": (
        "剧毒气体及硫化氢管道穿越厂区外公共区域",
        "highly toxic gas or H2S pipelines crossing public areas outside the site",
    ),
    "MHD09": (
        "架空电力线路穿越生产区且不符合标准",
        "overhead power lines crossing the production area against the standard",
    ),
    "MHD10": (
        "在役化工装置未经正规设计且未进行安全设计诊断",
        "in-service chemical unit never formally designed and never safety-diagnosed",
    ),
    "MHD11": ("使用淘汰落后工艺、设备", "process or equipment on the phase-out list still in use"),
    "MHD12": (
        "未按标准设置可燃有毒气体检测报警或防爆电气",
        "no gas detection where required, or non-explosion-proof electrics in hazardous areas",
    ),
    "MHD13": (
        "控制室或机柜间面向危险装置一侧不满足防火防爆要求",
        "control room or rack room facing a hazardous unit without fire/blast protection",
    ),
    "MHD14": (
        "未按要求设置双重电源或控制系统不间断电源",
        "no dual power supply, or no UPS for the control system",
    ),
    "MHD15": (
        "安全阀、爆破片等安全附件未正常投用",
        "safety valves or bursting discs not in service",
    ),
    "MHD16": (
        "未建立全员安全生产责任制或隐患排查治理制度",
        "no safety responsibility system for all staff, or no hidden-danger procedure",
    ),
    "MHD17": ("未制定操作规程和工艺控制指标", "no operating procedures or process control limits"),
    "MHD18": (
        "动火、受限空间等特殊作业制度缺失或未有效执行",
        "hot work / confined space permit rules missing or not enforced",
    ),
    "MHD19": (
        "新工艺未经试验论证或未开展反应安全风险评估即投产",
        "new process run without trials, reliability review or reaction-hazard assessment",
    ),
    "MHD20": (
        "未分区分类储存、超量超品种储存或禁配物质混存",
        "chemicals stored unsegregated, above licensed amounts or incompatibles together",
    ),
}

#: How often a recurring inspection task falls due (layers/prevention/dual.py); ``once`` is a
#: single task with one due date. Values: the PostgreSQL interval between two due dates.
INSPECTION_FREQUENCIES: Final[dict[str, str | None]] = {
    "once": None,
    "daily": "1 day",
    "weekly": "7 days",
    "monthly": "1 month",
    "quarterly": "3 months",
    "yearly": "1 year",
}
