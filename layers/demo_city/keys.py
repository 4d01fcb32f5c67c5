"""One demo key per role for the demo city, printed by ``make run`` (issue 8).

Keys are stored hashed, so the clear keys are kept in ``<data dir>/demo_keys.json`` (mode
0600) and re-printed on the next ``make run``; a key that no longer works (a fresh database,
a revocation) is replaced. Demo only: a real deployment makes keys with ``georisk keys create``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from layers.access.keys import create_key, lookup

FILE_NAME = "demo_keys.json"


async def _demo_subjects(conn: AsyncConnection[Any]) -> dict[str, dict[str, Any]]:
    """What each demo key stands for: the first district, the worst-rated hazmat enterprise."""
    cur = await conn.execute("SELECT code FROM districts ORDER BY code LIMIT 1")
    district = await cur.fetchone()
    cur = await conn.execute(
        "SELECT e.id, e.name FROM enterprises e WHERE EXISTS (SELECT 1 FROM hazard_sources h"
        " WHERE h.enterprise_id = e.id) ORDER BY array_position(ARRAY['red', 'orange', 'yellow',"
        " 'blue'], coalesce(e.dynamic_color, e.inherent_color)), e.id LIMIT 1"
    )
    enterprise = await cur.fetchone()
    districts = [district[0]] if district else None
    subjects: dict[str, dict[str, Any]] = {
        "admin": {"name": "demo administrator"},
        "regulator": {"name": "demo district regulator", "districts": districts},
        "officer": {"name": "demo transport officer", "districts": districts},
        "tile_reader": {"name": "demo tile reader"},
        # A machine: the district's sensor and GPS gateway posts fixes and readings, nothing
        # else (a carrier's terminal gateway would name --carrier instead).
        "ingest": {"name": "demo ingest gateway", "districts": districts},
    }
    if enterprise is not None:
        subjects["enterprise"] = {
            "name": f"demo enterprise user ({enterprise[1]})",
            "enterprise_id": enterprise[0],
        }
    return subjects


async def ensure_demo_keys(conn: AsyncConnection[Any], data_dir: Path) -> list[dict[str, Any]]:
    """The demo keys, made where missing or no longer valid; the file is rewritten."""
    path = data_dir / FILE_NAME
    kept: dict[str, dict[str, Any]] = {}
    if path.exists():
        for entry in json.loads(path.read_text()):
            if await lookup(conn, entry["key"]) is not None:
                kept[entry["role"]] = entry
    out: list[dict[str, Any]] = []
    for role, subject in (await _demo_subjects(conn)).items():
        if role not in kept:
            row, key = await create_key(
                conn,
                subject["name"],
                role,
                enterprise_id=subject.get("enterprise_id"),
                districts=subject.get("districts"),
            )
            kept[role] = {
                "role": role,
                "key": key,
                "name": row["name"],
                "enterprise_id": row["enterprise_id"],
                "districts": row["districts"],
            }
        out.append(kept[role])
    await conn.commit()
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    path.chmod(0o600)
    return out


def describe(entry: dict[str, Any]) -> str:
    scope = ""
    if entry.get("enterprise_id"):
        scope = f" enterprise {entry['enterprise_id']}"
    elif entry.get("districts"):
        scope = f" districts {','.join(entry['districts'])}"
    if entry["role"] == "ingest":
        scope += "; POST /api/positions and /api/readings only"
    return f"  {entry['role']:<12} {entry['key']}   ({entry['name']}{scope})"
