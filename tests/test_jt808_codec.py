"""The JT/T 808 codec on hand-built frames: framing, escaping, check code, headers of both
editions, the bodies the gateway reads and writes, BCD times (docs/jt808.md)."""

from __future__ import annotations

import datetime as dt
import struct

import pytest

from layers.transport.jt808 import messages as m
from layers.transport.jt808.fixes import batch_rows, concat_rows, signed32, to_rows
from layers.transport.jt808.frame import (
    FrameReader,
    Malformed,
    Oversized,
    check_code,
    decode_frame,
    encode_frame,
    escape,
    unescape,
)

PHONE = "013800138000"
#: A 2013 heartbeat from PHONE, serial 1, built by hand: id 0002, properties 0000, BCD phone,
#: serial 0001, check code = XOR of those 12 bytes = 0xa9.
HEARTBEAT = bytes.fromhex("7e000200000138001380000001a97e")


def _segments(reader: FrameReader, data: bytes) -> list[bytes | Oversized]:
    return list(reader.feed(data))


def test_a_hand_built_heartbeat_encodes_and_decodes() -> None:
    assert encode_frame(m.HEARTBEAT, PHONE, 1) == HEARTBEAT
    frame = decode_frame(HEARTBEAT[1:-1])
    assert frame.header.msg_id == 0x0002 and frame.header.phone == PHONE
    assert frame.header.serial == 1 and frame.header.version is None and frame.body == b""


def test_2019_header_with_version_and_ten_byte_phone_round_trips() -> None:
    wire = encode_frame(m.LOCATION, "00013800138000", 0xFFFF, b"\x01\x02\x03", version=1)
    props = struct.unpack(">H", wire[3:5])[0]
    assert props & 0x4000 and props & 0x3FF == 3  # version flag, body length
    assert wire[5] == 1 and wire[6:16] == bytes.fromhex("00000000013800138000")
    frame = decode_frame(wire[1:-1])
    assert frame.header.version == 1 and frame.header.phone == "00000000013800138000"
    assert frame.header.serial == 0xFFFF and frame.body == b"\x01\x02\x03"


def test_0x7e_and_0x7d_inside_a_body_are_escaped_and_restored() -> None:
    body = bytes([0x30, 0x7E, 0x08, 0x7D, 0x55, 0x7D, 0x02])
    wire = encode_frame(m.LOCATION, PHONE, 0x7E7D, body)
    inner = wire[1:-1]
    assert 0x7E not in inner  # the only 0x7e are the delimiters
    assert b"\x7d\x02" in inner and b"\x7d\x01" in inner
    frame = decode_frame(inner)
    assert frame.body == body and frame.header.serial == 0x7E7D
    assert unescape(escape(body)) == body
    assert escape(b"\x7e\x7d") == b"\x7d\x02\x7d\x01"


def test_a_bad_check_code_is_malformed_but_still_answerable() -> None:
    bad = bytearray(HEARTBEAT)
    bad[-2] ^= 0xFF
    with pytest.raises(Malformed) as info:
        decode_frame(bytes(bad[1:-1]))
    assert "check code" in info.value.reason
    assert info.value.header is not None and info.value.header.serial == 1
    assert info.value.header.msg_id == m.HEARTBEAT


def test_truncated_frames_and_bad_escapes_are_malformed() -> None:
    with pytest.raises(Malformed) as info:
        decode_frame(HEARTBEAT[1:8])
    assert info.value.header is None and "shorter" in info.value.reason
    with pytest.raises(Malformed, match="not BCD") as info:  # no phone to answer to
        decode_frame(bytes.fromhex("000200000138001380ff0001") + b"\x00")
    assert info.value.header is None
    with pytest.raises(Malformed, match="bad escape"):
        decode_frame(HEARTBEAT[1:5] + b"\x7d\x03" + HEARTBEAT[7:-1])
    # the header claims 5 body bytes, 2 are there: malformed, but the header is known
    content = bytes.fromhex("020000050138001380000009") + b"\x01\x02"
    with pytest.raises(Malformed) as info:
        decode_frame(content + bytes([check_code(content)]))
    assert "body is 2 bytes" in info.value.reason and info.value.header is not None


def test_the_reader_splits_frames_across_reads_and_resyncs_after_garbage() -> None:
    two = encode_frame(m.HEARTBEAT, PHONE, 1) + encode_frame(m.HEARTBEAT, PHONE, 2)
    reader = FrameReader(256)
    got = [s for b in two for s in reader.feed(bytes([b]))]  # one byte per read
    assert [decode_frame(s).header.serial for s in got if isinstance(s, bytes)] == [1, 2]
    # garbage before the first frame is skipped; a half frame then a good one: the half
    # frame is one bad segment, the good frame survives
    reader = FrameReader(256)
    stream = b"\x00\x01garbage" + HEARTBEAT + b"\x7e\x00\x02\x00" + encode_frame(2, PHONE, 9)
    segs = _segments(reader, stream)
    assert reader.skipped == len(b"\x00\x01garbage")
    decoded = []
    for seg in segs:
        assert isinstance(seg, bytes)
        try:
            decoded.append(decode_frame(seg).header.serial)
        except Malformed:
            decoded.append(-1)
    assert decoded == [1, -1, 9]
    # back-to-back frames sharing nothing: 7e A 7e 7e B 7e
    assert len(_segments(FrameReader(256), HEARTBEAT + HEARTBEAT)) == 2


def test_an_oversized_frame_is_dropped_and_the_next_one_read() -> None:
    reader = FrameReader(64)
    out = _segments(reader, b"\x7e" + b"\x11" * 50)
    assert out == [] and reader.pending == 50
    out = _segments(reader, b"\x22" * 50 + HEARTBEAT)
    assert isinstance(out[0], Oversized) and out[0].size == 100
    assert reader.pending == 0
    assert [decode_frame(s).header.serial for s in out[1:] if isinstance(s, bytes)] == [1]


def _location_body(time_hex: str, status: int = 0b11, extras: bytes = b"") -> bytes:
    return (
        struct.pack(">IIIIHHH", 0x0000_0101, status, 30_123_456, 121_654_321, 12, 653, 275)
        + bytes.fromhex(time_hex)
        + extras
    )


def test_a_location_report_decodes_to_utc_with_items_skipped() -> None:
    # 2026-01-05 08:30:00 UTC+8; extras: mileage (0x01, 4 bytes), fuel (0x02, 2), and a
    # truncated last item (id 0x30 claims 5 bytes, 1 present) that is dropped
    extras = bytes.fromhex("0104000003e802020064300501")
    loc = m.decode_location(_location_body("260105083000", extras=extras))
    assert loc.error is None
    assert loc.lat == pytest.approx(30.123456) and loc.lon == pytest.approx(121.654321)
    assert loc.speed_kmh == pytest.approx(65.3) and loc.direction == 275 and loc.altitude_m == 12
    assert loc.alarm == 0x0101  # emergency + main power cut
    want = dt.datetime(2026, 1, 5, 0, 30, tzinfo=dt.UTC)
    assert loc.t_us == int(want.timestamp()) * 1_000_000
    assert loc.extras == ((0x01, bytes.fromhex("000003e8")), (0x02, bytes.fromhex("0064")))


def test_south_and_west_bits_make_the_coordinates_negative() -> None:
    loc = m.decode_location(_location_body("260105083000", status=0b1111))
    assert loc.lat == pytest.approx(-30.123456) and loc.lon == pytest.approx(-121.654321)
    when = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    back = m.decode_location(m.encode_location(-70.5, -33.25, 88.8, 10, when, alarm=1 << 31))
    assert (back.lon, back.lat, back.speed_kmh, back.alarm) == (-70.5, -33.25, 88.8, 1 << 31)
    assert back.t_us == int(when.timestamp()) * 1_000_000


@pytest.mark.parametrize(
    ("time_hex", "status", "needle"),
    [
        ("000101000000", 0b11, "ts: 2000-01-01 00:00:00 UTC+8 is before 2010-01-01"),
        ("261301000000", 0b11, "ts: 261301000000 is no date-time"),
        ("2601050830aa", 0b11, "ts: 2601050830aa is not BCD"),
        ("260105083000", 0b01, "lat/lon: the terminal reports no GNSS fix"),
    ],
)
def test_impossible_times_and_no_fix_are_row_errors(
    time_hex: str, status: int, needle: str
) -> None:
    loc = m.decode_location(_location_body(time_hex, status=status))
    assert loc.t_us is None and loc.error is not None and loc.error.startswith(needle)


def test_a_short_location_body_is_malformed() -> None:
    with pytest.raises(Malformed, match="at least 28"):
        m.decode_location(b"\x00" * 27)


def test_a_batch_keeps_good_items_and_names_bad_ones() -> None:
    good = _location_body("260105083000")
    body = m.encode_batch([good, b"\x00" * 10, _location_body("000101000000")], m.BACKFILL)
    batch = m.decode_batch(body)
    assert batch.kind == m.BACKFILL and len(batch.items) == 3
    first, short, old = batch.items
    assert isinstance(first, m.Location) and first.error is None
    assert isinstance(short, Malformed)
    assert isinstance(old, m.Location) and old.error is not None and old.error.startswith("ts")
    with pytest.raises(Malformed, match="says 3 items"):
        m.decode_batch(struct.pack(">HB", 3, 1) + struct.pack(">H", len(good)) + good)
    with pytest.raises(Malformed, match="after its 1 items"):
        m.decode_batch(m.encode_batch([good]) + b"\x00")


@pytest.mark.parametrize("edition_2019", [False, True])
def test_registration_round_trips_with_a_chinese_plate(edition_2019: bool) -> None:
    reg = m.Registration(33, 200, "ACME", "T-808", "ID00001", 2, "浙B·D1234")
    body = m.encode_registration(reg, edition_2019)
    assert len(body) == (37 if not edition_2019 else 76) + len("浙B·D1234".encode("gbk"))
    assert m.decode_registration(body, edition_2019) == reg
    with pytest.raises(Malformed):
        m.decode_registration(body[:30], edition_2019)


def test_the_platform_answers_have_the_spec_layout() -> None:
    assert m.encode_general_response(0x1234, 0x0200, 2) == bytes.fromhex("1234020002")
    assert m.encode_register_response(7, 0, "abc") == bytes.fromhex("000700") + b"abc"
    assert m.encode_register_response(7, 2, "ignored") == bytes.fromhex("000702")
    assert m.decode_register_response(bytes.fromhex("000700") + b"abc") == (7, 0, "abc")
    assert m.decode_auth(b"code1") == "code1"
    assert m.decode_auth(m.encode_auth("code1", True, "860000000000001", "1.0"), True) == "code1"


def test_locations_become_ingest_rows_with_per_row_errors() -> None:
    good = m.decode_location(_location_body("260105083000"))
    bad = m.decode_location(_location_body("000101000000"))
    rows = to_rows([(5, good), (6, bad), (5, good)])
    assert rows.index.tolist() == [0, 2] and rows.vehicle_id.tolist() == [5, 5]
    assert rows.speed.tolist() == pytest.approx([65.3, 65.3]) and rows.total == 3
    assert rows.heading.tolist() == [275, 275] and rows.alarm_bits.tolist() == [0x101, 0x101]
    assert rows.errors[0][0] == 1 and rows.errors[0][1].startswith("ts")
    assert signed32(1 << 31) == -(1 << 31) and signed32(0x101) == 0x101


def test_a_batch_decoded_at_once_equals_its_reports_decoded_one_by_one() -> None:
    """``batch_rows`` (numpy over every item) gives what ``decode_batch`` + ``to_rows`` give:
    the same columns, and the same per-item errors — a short item, a non-BCD time, a day
    that does not exist, 24 o'clock, a year-2000 time, no GNSS fix — in item order."""
    t0 = dt.datetime(2026, 3, 1, 23, 59, 30, tzinfo=m.CST)
    good = [
        m.encode_location(121.5 + k / 1e4, -29.8, 12.6, 359, t0 + dt.timedelta(seconds=10 * k))
        for k in range(6)
    ]
    good[1] = m.encode_location(-0.5, 51.5, 0, 0, t0, alarm=1 << 31 | 1, extras=((1, b"\x00" * 4),))
    bad_bcd = good[0][:22] + bytes.fromhex("26a301000000")
    no_day = good[0][:22] + bytes.fromhex("260230120000")
    hour_24 = good[0][:22] + bytes.fromhex("260301240000")
    y2000 = good[0][:22] + bytes.fromhex("000101000000")
    unfixed = m.encode_location(121.5, 29.8, 10, 0, t0, status=m.ACC)
    items = [good[0], b"\x00" * 20, good[1], bad_bcd, good[2], no_day, hour_24, y2000]
    items += [unfixed, *good[3:]]
    body = m.encode_batch(items)
    fast = batch_rows(7, body)
    slow = to_rows([(7, loc) for loc in m.decode_batch(body).items if isinstance(loc, m.Location)])
    decoded = m.decode_batch(body).items
    want_errors = [
        (k, it.reason if isinstance(it, Malformed) else it.error)
        for k, it in enumerate(decoded)
        if isinstance(it, Malformed) or it.error is not None
    ]
    assert fast.errors == want_errors and len(want_errors) == 6
    assert fast.total == len(items) == 12
    good_items = [k for k, it in enumerate(decoded) if k not in dict(want_errors)]
    assert fast.index.tolist() == good_items == [0, 2, 4, 9, 10, 11]
    # the slow path numbered only the Location items: compare values, not positions
    for col in ("vehicle_id", "t", "lon", "lat", "speed", "heading", "alarm_bits"):
        assert getattr(fast, col).tolist() == getattr(slow, col).tolist(), col
    assert fast.lon[1] == -0.5 and fast.lat[0] == -29.8 and fast.alarm_bits[1] == 1 - (1 << 31)
    assert fast.t[0] == int(t0.timestamp() * 1_000_000)
    # every item 28 bytes (the usual batch, read as one grid): the same again
    uniform = [good[0], bad_bcd, good[2], no_day, hour_24, y2000, unfixed, *good[3:]]
    body28 = m.encode_batch(uniform)
    fast28 = batch_rows(7, body28)
    slow28 = to_rows([(7, loc) for loc in m.decode_batch(body28).items])  # type: ignore[misc]
    assert fast28.errors == [(k, e) for k, e in slow28.errors] and len(fast28.errors) == 5
    for col in ("index", "vehicle_id", "t", "lon", "lat", "speed", "heading", "alarm_bits"):
        assert getattr(fast28, col).tolist() == getattr(slow28, col).tolist(), col
    clean = batch_rows(7, m.encode_batch([good[0], good[1][:28], *good[2:]]))
    assert clean.errors == [] and clean.index.tolist() == list(range(6))
    assert clean.alarm_bits[1] == 1 - (1 << 31) and clean.lon[1] == -0.5
    with pytest.raises(Malformed, match="runs past the body"):
        batch_rows(7, body[:-3])
    with pytest.raises(Malformed, match="after its 12 items"):
        batch_rows(7, body + b"\x00")


def test_rows_of_several_messages_concatenate_with_shifted_positions() -> None:
    when = dt.datetime(2026, 3, 1, 8, tzinfo=m.CST)
    a = batch_rows(1, m.encode_batch([b"\x00", m.encode_location(121.0, 29.0, 5, 0, when)]))
    b = to_rows([(2, m.decode_location(m.encode_location(122.0, 30.0, 6, 0, when)))])
    both = concat_rows([a, b, a])
    assert both.total == 5 and both.index.tolist() == [1, 2, 4]
    assert both.vehicle_id.tolist() == [1, 2, 1] and both.lon.tolist() == [121.0, 122.0, 121.0]
    assert [k for k, _ in both.errors] == [0, 3]
