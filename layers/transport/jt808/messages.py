"""JT/T 808 message bodies: what terminals send (decoded by the gateway, encoded by the
simulator) and the platform's two answers. Pure, no I/O. Layouts per JT/T 808-2013 §8 and the
2019 edition where it differs (registration field widths, authentication); big-endian; text is
GBK (plates carry Chinese characters).

Times are BCD ``YYMMDDhhmmss`` in Beijing time (UTC+8), stored as UTC. An impossible time — a
bad BCD digit, no such date, or before ``EARLIEST`` (terminals without a GNSS fix report dates
such as 2000-01-01) — is a per-row error naming ``ts``; the future is refused later by the
ingest's own filter, exactly as for ``POST /api/positions``.
"""

from __future__ import annotations

import datetime as dt
import functools
import struct
from dataclasses import dataclass

from layers.transport.jt808.frame import Malformed, bcd_decode, bcd_encode

# Terminal → platform
TERMINAL_RESPONSE = 0x0001
HEARTBEAT = 0x0002
LOGOUT = 0x0003
REGISTER = 0x0100
AUTHENTICATE = 0x0102
LOCATION = 0x0200
BATCH = 0x0704
# Platform → terminal
GENERAL_RESPONSE = 0x8001
REGISTER_RESPONSE = 0x8100

# 0x8001 results (JT/T 808-2013 §8.2)
OK, FAILED, BAD_MESSAGE, UNSUPPORTED, ALARM_CONFIRMED = 0, 1, 2, 3, 4
# 0x8100 results (§8.6)
REGISTERED = 0
VEHICLE_TAKEN = 1  # the vehicle is already registered (to another terminal)
NO_SUCH_VEHICLE = 2
TERMINAL_TAKEN = 3  # the terminal is already registered (to another vehicle)
NO_SUCH_TERMINAL = 4

CST = dt.timezone(dt.timedelta(hours=8), "UTC+8")
#: Older than any terminal speaking this protocol (JT/T 808 dates from 2011).
EARLIEST = dt.datetime(2010, 1, 1, tzinfo=dt.UTC)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = _EPOCH.date()
_DAY_US = 86_400_000_000
CST_US = 8 * 3_600_000_000
EARLIEST_US = (EARLIEST - _EPOCH) // dt.timedelta(microseconds=1)
#: Status bits the gateway reads (§8.18, table 25): ACC on, positioned, south, west.
ACC, POSITIONED, SOUTH, WEST = 1 << 0, 1 << 1, 1 << 2, 1 << 3
LOCATION_SIZE = 28  # the fixed part of a 0x0200 body


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\x00 ").decode("gbk", errors="replace").strip()


def _pad(text: str, size: int) -> bytes:
    raw = text.encode("gbk")[:size]
    return raw + b"\x00" * (size - len(raw))


# -- registration 0x0100 / 0x8100 ------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    province: int
    city: int
    manufacturer: str
    model: str
    terminal_id: str
    plate_colour: int
    plate: str


#: (manufacturer, model, terminal id) widths by edition.
_REG_WIDTHS = {False: (5, 20, 7), True: (11, 30, 30)}


def decode_registration(body: bytes, edition_2019: bool = False) -> Registration:
    m, mo, t = _REG_WIDTHS[edition_2019]
    fixed = 4 + m + mo + t + 1
    if len(body) < fixed:
        raise Malformed(f"registration body of {len(body)} bytes, at least {fixed} expected")
    province, city = struct.unpack_from(">HH", body, 0)
    pos = 4
    manufacturer = _text(body[pos : pos + m])
    model = _text(body[pos + m : pos + m + mo])
    terminal_id = _text(body[pos + m + mo : pos + m + mo + t])
    pos += m + mo + t
    return Registration(
        province, city, manufacturer, model, terminal_id, body[pos], _text(body[pos + 1 :])
    )


def encode_registration(reg: Registration, edition_2019: bool = False) -> bytes:
    m, mo, t = _REG_WIDTHS[edition_2019]
    return (
        struct.pack(">HH", reg.province, reg.city)
        + _pad(reg.manufacturer, m)
        + _pad(reg.model, mo)
        + _pad(reg.terminal_id, t)
        + bytes([reg.plate_colour])
        + reg.plate.encode("gbk")
    )


def encode_register_response(serial: int, result: int, auth_code: str = "") -> bytes:
    """0x8100: the registration's serial, the result, and the auth code when it is 0."""
    body = struct.pack(">HB", serial, result)
    return body + auth_code.encode("gbk") if result == REGISTERED else body


def decode_register_response(body: bytes) -> tuple[int, int, str]:
    if len(body) < 3:
        raise Malformed("registration response shorter than 3 bytes")
    serial, result = struct.unpack_from(">HB", body, 0)
    return serial, result, _text(body[3:])


# -- authentication 0x0102 -------------------------------------------------------------------


def decode_auth(body: bytes, edition_2019: bool = False) -> str:
    """The auth code: the whole body (2013), or length-prefixed before IMEI and software
    version (2019)."""
    if not edition_2019:
        return _text(body)
    if not body or len(body) < 1 + body[0]:
        raise Malformed("authentication body shorter than its code length")
    return _text(body[1 : 1 + body[0]])


def encode_auth(code: str, edition_2019: bool = False, imei: str = "", software: str = "") -> bytes:
    raw = code.encode("gbk")
    if not edition_2019:
        return raw
    return bytes([len(raw)]) + raw + _pad(imei, 15) + _pad(software, 20)


# -- general responses 0x8001 (and the terminal's 0x0001, same layout) -----------------------


def encode_general_response(serial: int, msg_id: int, result: int) -> bytes:
    return struct.pack(">HHB", serial, msg_id, result)


def decode_general_response(body: bytes) -> tuple[int, int, int]:
    if len(body) != 5:
        raise Malformed(f"general response of {len(body)} bytes, 5 expected")
    serial, msg_id, result = struct.unpack(">HHB", body)
    return serial, msg_id, result


# -- location 0x0200 and batch 0x0704 --------------------------------------------------------


@dataclass(slots=True)  # not frozen: a frozen init costs a third of decoding a report
class Location:
    alarm: int  # u32 alarm flags (docs/domain.md §3)
    status: int  # u32 status flags
    lat: float  # signed degrees (south negative)
    lon: float  # signed degrees (west negative)
    altitude_m: int
    speed_kmh: float
    direction: int  # 0–359, north = 0, clockwise
    time: str  # the 12 BCD digits as sent
    t_us: int | None  # µs since the epoch (UTC); None when ``error``
    error: str | None = None  # why the row cannot be stored ("ts: …", "lat/lon: …")
    extras: tuple[tuple[int, bytes], ...] = ()  # additional items (id, value), kept unread


@functools.lru_cache(maxsize=1024)
def local_day_us(yymmdd: str) -> int:
    """Midnight of ``YYMMDD`` as µs since the epoch, as if it were UTC (``ValueError`` for a
    day that does not exist). Cached: a stream of fixes names few days, and strptime per fix
    cost more than the rest of decoding a report together."""
    day = dt.date(2000 + int(yymmdd[0:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))
    return (day - _EPOCH_DAY).days * _DAY_US


def bcd_time_us(digits: str) -> int:
    """``YYMMDDhhmmss`` in UTC+8 → µs since the epoch (UTC); ``ValueError`` naming ``ts``."""
    try:
        if len(digits) != 12 or not digits.isdigit():
            raise ValueError
        hh, mi, ss = int(digits[6:8]), int(digits[8:10]), int(digits[10:12])
        if hh > 23 or mi > 59 or ss > 59:
            raise ValueError
        t_us = local_day_us(digits[:6]) + ((hh * 60 + mi) * 60 + ss) * 1_000_000 - CST_US
    except ValueError:
        raise ValueError(f"ts: {digits} is no date-time (YYMMDDhhmmss, UTC+8)") from None
    if t_us < EARLIEST_US:
        local = _EPOCH + dt.timedelta(microseconds=t_us + CST_US)
        raise ValueError(
            f"ts: {local:%Y-%m-%d %H:%M:%S} UTC+8 is before {EARLIEST:%Y-%m-%d}"
            " (a terminal without a GNSS fix)"
        )
    return t_us


def _extras(raw: bytes) -> tuple[tuple[int, bytes], ...]:
    """Additional items (id u8, length u8, value); a truncated last item is dropped, since
    nothing the gateway stores depends on them."""
    out, pos = [], 0
    while pos + 2 <= len(raw):
        item, size = raw[pos], raw[pos + 1]
        if pos + 2 + size > len(raw):
            break
        out.append((item, bytes(raw[pos + 2 : pos + 2 + size])))
        pos += 2 + size
    return tuple(out)


def decode_location(body: bytes) -> Location:
    """A 0x0200 body (also each item of a 0x0704). Raises ``Malformed`` when shorter than its
    fixed part; a bad time or no GNSS fix is the row's ``error``, not an exception."""
    if len(body) < LOCATION_SIZE:
        raise Malformed(f"location body of {len(body)} bytes, at least {LOCATION_SIZE} expected")
    alarm, status, lat_u, lon_u, alt, speed, direction = struct.unpack_from(">IIIIHHH", body, 0)
    lat = (-lat_u if status & SOUTH else lat_u) / 1e6
    lon = (-lon_u if status & WEST else lon_u) / 1e6
    time_raw = body[22:28]
    error: str | None = None
    t_us: int | None = None
    try:
        digits = bcd_decode(time_raw)
    except Malformed:
        digits = time_raw.hex()
        error = f"ts: {digits} is not BCD"
    if error is None:
        try:
            t_us = bcd_time_us(digits)
        except ValueError as exc:
            error = str(exc)
    if error is None and not status & POSITIONED:
        error = "lat/lon: the terminal reports no GNSS fix (status bit 1 clear)"
    return Location(
        alarm=alarm,
        status=status,
        lat=lat,
        lon=lon,
        altitude_m=alt,
        speed_kmh=speed / 10,
        direction=direction,
        time=digits,
        t_us=t_us if error is None else None,
        error=error,
        extras=_extras(body[LOCATION_SIZE:]),
    )


def encode_location(
    lon: float,
    lat: float,
    speed_kmh: float,
    direction: int,
    when: dt.datetime,
    alarm: int = 0,
    status: int = ACC | POSITIONED,
    altitude_m: int = 0,
    extras: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    """A 0x0200 body; ``when`` (aware) is sent in UTC+8; south/west set the status bits."""
    status &= ~(SOUTH | WEST)
    status |= (SOUTH if lat < 0 else 0) | (WEST if lon < 0 else 0)
    body = struct.pack(
        ">IIIIHHH",
        alarm & 0xFFFFFFFF,
        status,
        round(abs(lat) * 1e6),
        round(abs(lon) * 1e6),
        altitude_m,
        round(speed_kmh * 10),
        direction,
    )
    body += bcd_encode(when.astimezone(CST).strftime("%y%m%d%H%M%S"), 6)
    for item, value in extras:
        body += bytes([item, len(value)]) + value
    return body


NORMAL, BACKFILL = 0, 1  # 0x0704 types: normal batch, blind-area back-fill


@dataclass(frozen=True)
class BatchUpload:
    kind: int
    items: tuple[Location | Malformed, ...]  # an unreadable item is its own error


def decode_batch(body: bytes) -> BatchUpload:
    """A 0x0704 body: count u16, type u8, then count × (length u16, 0x0200 body). Items
    that run past the body, or a count that disagrees with them, make it malformed."""
    if len(body) < 3:
        raise Malformed("batch body shorter than 3 bytes")
    count, kind = struct.unpack_from(">HB", body, 0)
    pos = 3
    items: list[Location | Malformed] = []
    for k in range(count):
        if pos + 2 > len(body):
            raise Malformed(f"batch says {count} items, the body ends in item {k}")
        (size,) = struct.unpack_from(">H", body, pos)
        pos += 2
        if pos + size > len(body):
            raise Malformed(f"batch item {k} of {size} bytes runs past the body")
        try:
            items.append(decode_location(body[pos : pos + size]))
        except Malformed as exc:
            items.append(exc)
        pos += size
    if pos != len(body):
        raise Malformed(f"batch has {len(body) - pos} bytes after its {count} items")
    return BatchUpload(kind, tuple(items))


def encode_batch(locations: list[bytes], kind: int = BACKFILL) -> bytes:
    body = struct.pack(">HB", len(locations), kind)
    for loc in locations:
        body += struct.pack(">H", len(loc)) + loc
    return body
