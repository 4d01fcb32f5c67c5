"""rule sets as data, the deduction lifecycle, licences and personnel certificates

Issue 15 items 1–3 (docs/rules.md, docs/domain.md §4):
- ``rule_sets`` (code + version: a new import is a new version, deductions keep theirs),
  ``rule_items`` (points, category, tier, automatic trigger, cap per cycle), ``rule_measures``
  (threshold → effects) and ``rule_assignments`` (set ← enterprise category, district, tag).
  The shipped Xiaoshan and Hailing sets (layers/prevention/data/rule_sets/) are loaded here as
  version 1, marked ``is_sample``.
- ``enterprises.tags``: free labels such as ``furnace``, used by assignments (Hailing scores
  furnace enterprises, not every enterprise of a district).
- ``score_events`` gains the lifecycle: ``state`` (open → reported → accepted / rejected;
  voided), the evidence, who reported / reviewed / voided and when, the set version, and a
  ``trigger_key`` unique per enterprise so an automatic deduction happens once per instance.
  ``rectified`` becomes ``state = 'accepted'``.
- ``score_earn_backs``: points earned back (training, verified improvement), regulator-approved.
- ``licences`` / ``certificates`` with ``valid_until`` (the last valid day) and
  ``expiry_notices`` (one warning per document per expiry). ``enterprises.licence_expiry`` is
  copied into ``licences`` as a safety production licence.
- ``webhook_outbox`` rows may carry a safety-score event instead of an alert (``event_key``).
Every new table is audited like score_events (migration 0008's trigger function).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 07:30:00.000000
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHIPPED = Path(__file__).resolve().parents[2] / "layers" / "prevention" / "data" / "rule_sets"
AUDITED = ("rule_sets", "score_earn_backs", "licences", "certificates")

CATEGORIES = (
    "('unsafe_acts', 'unsafe_conditions', 'management', 'qualifications', 'monitoring', 'other')"
)
TRIGGERS = "('none', 'licence_expired', 'certificate_expired', 'alarm_undisposed')"
STATES = "('open', 'reported', 'accepted', 'rejected', 'voided')"
LICENCE_KINDS = (
    "('safety_production', 'hazmat_business', 'hazmat_use', 'hazmat_registration',"
    " 'pressure_equipment', 'other')"
)
CERT_ROLES = "('principal', 'safety_manager', 'special_operations')"

TABLES = f"""
CREATE TABLE rule_sets (
    id serial CONSTRAINT pk_rule_sets PRIMARY KEY,
    code text NOT NULL CONSTRAINT ck_rule_sets_code CHECK (code ~ '^[a-z0-9][a-z0-9_-]{{0,63}}$'),
    version integer NOT NULL CONSTRAINT ck_rule_sets_version CHECK (version >= 1),
    title_zh text NOT NULL,
    title_en text NOT NULL,
    is_sample boolean NOT NULL,
    source_note text,
    cycle_start_month smallint NOT NULL
        CONSTRAINT ck_rule_sets_cycle_start_month CHECK (cycle_start_month BETWEEN 1 AND 12),
    cycle_start_day smallint NOT NULL
        CONSTRAINT ck_rule_sets_cycle_start_day CHECK (cycle_start_day BETWEEN 1 AND 28),
    carry_over text NOT NULL CONSTRAINT ck_rule_sets_carry_over
        CHECK (carry_over IN ('none', 'unrectified')),
    earn_back_allowed boolean NOT NULL DEFAULT false,
    earn_back_cap smallint NOT NULL DEFAULT 0
        CONSTRAINT ck_rule_sets_earn_back_cap CHECK (earn_back_cap BETWEEN 0 AND 12),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL DEFAULT coalesce(nullif(current_setting('georisk.actor', true), ''),
                                              'system'),
    CONSTRAINT uq_rule_sets_code_version UNIQUE (code, version)
);
CREATE TABLE rule_items (
    id serial CONSTRAINT pk_rule_items PRIMARY KEY,
    rule_set_id integer NOT NULL CONSTRAINT fk_rule_items_rule_set_id_rule_sets
        REFERENCES rule_sets (id) ON DELETE CASCADE,
    code text NOT NULL,
    text_zh text NOT NULL,
    text_en text NOT NULL,
    points smallint NOT NULL CONSTRAINT ck_rule_items_points CHECK (points BETWEEN 1 AND 12),
    category text NOT NULL CONSTRAINT ck_rule_items_category CHECK (category IN {CATEGORIES}),
    tier text NOT NULL CONSTRAINT ck_rule_items_tier CHECK (tier IN ('provincial', 'district')),
    trigger text NOT NULL DEFAULT 'none'
        CONSTRAINT ck_rule_items_trigger CHECK (trigger IN {TRIGGERS}),
    cap_per_cycle smallint CONSTRAINT ck_rule_items_cap_per_cycle
        CHECK (cap_per_cycle IS NULL OR cap_per_cycle >= points),
    position integer NOT NULL,
    CONSTRAINT uq_rule_items_rule_set_id_code UNIQUE (rule_set_id, code)
);
CREATE TABLE rule_measures (
    id serial CONSTRAINT pk_rule_measures PRIMARY KEY,
    rule_set_id integer NOT NULL CONSTRAINT fk_rule_measures_rule_set_id_rule_sets
        REFERENCES rule_sets (id) ON DELETE CASCADE,
    at_points smallint NOT NULL
        CONSTRAINT ck_rule_measures_at_points CHECK (at_points BETWEEN 1 AND 12),
    code text NOT NULL,
    text_zh text NOT NULL,
    text_en text NOT NULL,
    colour_raise smallint NOT NULL DEFAULT 0
        CONSTRAINT ck_rule_measures_colour_raise CHECK (colour_raise BETWEEN 0 AND 3),
    key_list boolean NOT NULL DEFAULT false,
    inspection_every_days smallint CONSTRAINT ck_rule_measures_inspection_every_days
        CHECK (inspection_every_days IS NULL OR inspection_every_days BETWEEN 1 AND 366),
    interview boolean NOT NULL DEFAULT false,
    enforcement boolean NOT NULL DEFAULT false,
    CONSTRAINT uq_rule_measures_rule_set_id_code UNIQUE (rule_set_id, code)
);
CREATE TABLE rule_assignments (
    id serial CONSTRAINT pk_rule_assignments PRIMARY KEY,
    rule_set_code text NOT NULL,
    category text,
    district text,
    tag text,
    priority integer NOT NULL DEFAULT 0,
    note text
);
CREATE INDEX ix_rule_assignments_rule_set_code ON rule_assignments (rule_set_code);

ALTER TABLE enterprises ADD COLUMN tags text[] NOT NULL DEFAULT '{{}}';

ALTER TABLE score_events
    ADD COLUMN rule_set_version integer,
    ADD COLUMN evidence_url text,
    ADD COLUMN state text NOT NULL DEFAULT 'open',
    ADD COLUMN trigger_key text,
    ADD COLUMN created_by text,
    ADD COLUMN reported_at timestamptz,
    ADD COLUMN reported_by text,
    ADD COLUMN report_note text,
    ADD COLUMN report_evidence_url text,
    ADD COLUMN reviewed_at timestamptz,
    ADD COLUMN reviewed_by text,
    ADD COLUMN review_note text,
    ADD COLUMN reinspected_on date,
    ADD COLUMN voided_at timestamptz,
    ADD COLUMN voided_by text,
    ADD COLUMN void_reason text;
UPDATE score_events SET state = 'accepted' WHERE rectified;
UPDATE score_events SET trigger_key = CASE
    WHEN note LIKE 'auto:alarm_overdue:%' THEN 'alarm:' || substr(note, 20)
    WHEN note LIKE 'auto:licence_expired:%' THEN 'licence:safety_production:' || substr(note, 22)
    END
WHERE source = 'auto';
ALTER TABLE score_events DROP COLUMN rectified;
ALTER TABLE score_events ADD CONSTRAINT ck_score_events_state CHECK (state IN {STATES});
ALTER TABLE score_events ADD CONSTRAINT ck_score_events_voided
    CHECK ((state = 'voided') = (voided_at IS NOT NULL AND void_reason IS NOT NULL));
CREATE UNIQUE INDEX uq_score_events_trigger ON score_events (enterprise_id, trigger_key)
    WHERE trigger_key IS NOT NULL;

CREATE TABLE score_earn_backs (
    id serial CONSTRAINT pk_score_earn_backs PRIMARY KEY,
    enterprise_id integer NOT NULL CONSTRAINT fk_score_earn_backs_enterprise_id_enterprises
        REFERENCES enterprises (id) ON DELETE CASCADE,
    rule_set text NOT NULL,
    rule_set_version integer NOT NULL,
    points smallint NOT NULL CONSTRAINT ck_score_earn_backs_points CHECK (points BETWEEN 1 AND 12),
    reason text NOT NULL CONSTRAINT ck_score_earn_backs_reason
        CHECK (reason IN ('training', 'improvement')),
    note text NOT NULL,
    evidence_url text,
    occurred_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'requested' CONSTRAINT ck_score_earn_backs_state
        CHECK (state IN ('requested', 'approved', 'rejected')),
    requested_by text NOT NULL,
    reviewed_by text,
    reviewed_at timestamptz,
    review_note text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_score_earn_backs_enterprise_id ON score_earn_backs (enterprise_id);

CREATE TABLE licences (
    id serial CONSTRAINT pk_licences PRIMARY KEY,
    enterprise_id integer NOT NULL CONSTRAINT fk_licences_enterprise_id_enterprises
        REFERENCES enterprises (id) ON DELETE CASCADE,
    kind text NOT NULL CONSTRAINT ck_licences_kind CHECK (kind IN {LICENCE_KINDS}),
    number text,
    issued_on date,
    valid_until date NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_licences_dates CHECK (issued_on IS NULL OR issued_on <= valid_until)
);
CREATE INDEX ix_licences_enterprise_id ON licences (enterprise_id);
CREATE TABLE certificates (
    id serial CONSTRAINT pk_certificates PRIMARY KEY,
    enterprise_id integer NOT NULL CONSTRAINT fk_certificates_enterprise_id_enterprises
        REFERENCES enterprises (id) ON DELETE CASCADE,
    holder text NOT NULL CONSTRAINT ck_certificates_holder_not_blank
        CHECK (length(btrim(holder)) > 0),
    role text NOT NULL CONSTRAINT ck_certificates_role CHECK (role IN {CERT_ROLES}),
    operation text,
    number text,
    issued_on date,
    valid_until date NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_certificates_dates CHECK (issued_on IS NULL OR issued_on <= valid_until)
);
CREATE INDEX ix_certificates_enterprise_id ON certificates (enterprise_id);
CREATE TABLE expiry_notices (
    id serial CONSTRAINT pk_expiry_notices PRIMARY KEY,
    enterprise_id integer NOT NULL CONSTRAINT fk_expiry_notices_enterprise_id_enterprises
        REFERENCES enterprises (id) ON DELETE CASCADE,
    notice_key text NOT NULL,
    subject text NOT NULL CONSTRAINT ck_expiry_notices_subject
        CHECK (subject IN ('licence', 'certificate')),
    label text NOT NULL,
    valid_until date NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_expiry_notices_enterprise_id_notice_key UNIQUE (enterprise_id, notice_key)
);
CREATE INDEX ix_expiry_notices_enterprise_id ON expiry_notices (enterprise_id);

-- Webhooks carry safety-score events too: a row without an alert, deduplicated by its key.
ALTER TABLE webhook_outbox ALTER COLUMN alert_id DROP NOT NULL;
ALTER TABLE webhook_outbox ADD COLUMN event_key text;
ALTER TABLE webhook_outbox ADD CONSTRAINT ck_webhook_outbox_subject
    CHECK ((alert_id IS NULL) <> (event_key IS NULL));
CREATE UNIQUE INDEX uq_webhook_outbox_event_key ON webhook_outbox (subscription_id, event_key)
    WHERE event_key IS NOT NULL;

INSERT INTO licences (enterprise_id, kind, valid_until)
SELECT id, 'safety_production', licence_expiry FROM enterprises WHERE licence_expiry IS NOT NULL;
"""


def _audit(table: str) -> str:
    return (
        f"CREATE TRIGGER audit_{table}_update AFTER UPDATE ON {table}"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit();"
        f"CREATE TRIGGER audit_{table}_insert AFTER INSERT ON {table}"
        " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit();"
        f"CREATE TRIGGER audit_{table}_delete AFTER DELETE ON {table}"
        " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION georisk_audit();"
    )


def _q(value: Any) -> str:
    """A SQL literal for the shipped data (ours, but quoted all the same)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _shipped_set(doc: dict[str, Any]) -> str:
    """Version 1 of a shipped set, as plain INSERTs: the files are the import format
    (docs/rules.md); later changes arrive as new versions through ``georisk rules import``."""
    cycle, earn = doc["cycle"], doc.get("earn_back", {})
    sid = f"(SELECT id FROM rule_sets WHERE code = {_q(doc['code'])} AND version = 1)"
    out = [
        "INSERT INTO rule_sets (code, version, title_zh, title_en, is_sample, source_note,"
        " cycle_start_month, cycle_start_day, carry_over, earn_back_allowed, earn_back_cap,"
        " created_by) VALUES ("
        + ", ".join(
            _q(v)
            for v in (
                doc["code"],
                1,
                doc["title"]["zh"],
                doc["title"]["en"],
                doc["is_sample"],
                doc.get("source_note"),
                cycle["start_month"],
                cycle["start_day"],
                cycle["carry_over"],
                earn.get("allowed", False),
                earn.get("cap", 0),
                "migration 0016",
            )
        )
        + ")"
    ]
    for pos, item in enumerate(doc["items"]):
        values = (
            item["code"],
            item["text"]["zh"],
            item["text"]["en"],
            item["points"],
            item["category"],
            item["tier"],
            item.get("trigger", "none"),
            item.get("cap_per_cycle"),
            pos,
        )
        out.append(
            "INSERT INTO rule_items (rule_set_id, code, text_zh, text_en, points, category, tier,"
            f" trigger, cap_per_cycle, position) VALUES ({sid}, "
            + ", ".join(_q(v) for v in values)
            + ")"
        )
    for m in doc["measures"]:
        fx = m.get("effects", {})
        values = (
            m["at"],
            m["code"],
            m["text"]["zh"],
            m["text"]["en"],
            fx.get("colour_raise", 0),
            fx.get("key_list", False),
            fx.get("inspection_every_days"),
            fx.get("interview", False),
            fx.get("enforcement", False),
        )
        out.append(
            "INSERT INTO rule_measures (rule_set_id, at_points, code, text_zh, text_en,"
            " colour_raise, key_list, inspection_every_days, interview, enforcement)"
            f" VALUES ({sid}, " + ", ".join(_q(v) for v in values) + ")"
        )
    for a in doc.get("assignments", []):
        values = (
            doc["code"],
            a.get("category"),
            a.get("district"),
            a.get("tag"),
            a.get("priority", 0),
            a.get("note"),
        )
        out.append(
            "INSERT INTO rule_assignments (rule_set_code, category, district, tag, priority, note)"
            " VALUES (" + ", ".join(_q(v) for v in values) + ")"
        )
    return ";\n".join(out) + ";"


def upgrade() -> None:
    op.execute(TABLES)
    for table in AUDITED:
        op.execute(_audit(table))
    for path in sorted(SHIPPED.glob("*.json")):
        op.execute(_shipped_set(json.loads(path.read_text(encoding="utf-8"))))
    op.execute(
        "UPDATE score_events s SET rule_set_version = 1 WHERE rule_set_version IS NULL"
        " AND EXISTS (SELECT 1 FROM rule_sets r WHERE r.code = s.rule_set AND r.version = 1)"
    )


def downgrade() -> None:
    op.execute(
        """
DROP TABLE expiry_notices, certificates, licences, score_earn_backs;
DELETE FROM webhook_outbox WHERE alert_id IS NULL;
DROP INDEX uq_webhook_outbox_event_key;
ALTER TABLE webhook_outbox DROP CONSTRAINT ck_webhook_outbox_subject;
ALTER TABLE webhook_outbox DROP COLUMN event_key;
ALTER TABLE webhook_outbox ALTER COLUMN alert_id SET NOT NULL;
DROP INDEX uq_score_events_trigger;
ALTER TABLE score_events DROP CONSTRAINT ck_score_events_voided;
ALTER TABLE score_events DROP CONSTRAINT ck_score_events_state;
ALTER TABLE score_events ADD COLUMN rectified boolean NOT NULL DEFAULT false;
UPDATE score_events SET rectified = true WHERE state = 'accepted';
DELETE FROM score_events WHERE state = 'voided';
UPDATE score_events SET note = CASE
    WHEN trigger_key LIKE 'alarm:%' THEN 'auto:alarm_overdue:' || substr(trigger_key, 7)
    WHEN trigger_key LIKE 'licence:safety_production:%'
        THEN 'auto:licence_expired:' || substr(trigger_key, 27)
    ELSE note END
WHERE source = 'auto';
ALTER TABLE score_events
    DROP COLUMN rule_set_version, DROP COLUMN evidence_url, DROP COLUMN state,
    DROP COLUMN trigger_key, DROP COLUMN created_by, DROP COLUMN reported_at,
    DROP COLUMN reported_by, DROP COLUMN report_note, DROP COLUMN report_evidence_url,
    DROP COLUMN reviewed_at, DROP COLUMN reviewed_by, DROP COLUMN review_note,
    DROP COLUMN reinspected_on, DROP COLUMN voided_at, DROP COLUMN voided_by,
    DROP COLUMN void_reason;
ALTER TABLE enterprises DROP COLUMN tags;
DROP TABLE rule_assignments, rule_measures, rule_items, rule_sets;
"""
    )
