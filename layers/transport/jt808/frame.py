"""JT/T 808 framing: the TCP byte stream → frames → (header, body), and back. Pure, no I/O.

On the wire a message is ``0x7e | escaped(header + body + check) | 0x7e``; inside, ``0x7e`` is
sent as ``0x7d 0x02`` and ``0x7d`` as ``0x7d 0x01``. The check code is the XOR of every
unescaped byte of header and body. Header (JT/T 808-2013): message id u16, body properties
u16 (bits 0–9 body length, 10–12 encryption, 13 subpackage, 14 the 2019 edition's version
flag), terminal phone BCD[6], serial u16, and when subpackaged: package count u16, package
number u16. The 2019 edition (bit 14 set) adds a protocol-version byte after the properties and
widens the phone to BCD[10]. All integers are big-endian.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

FLAG = 0x7E
ESC = 0x7D
#: The body-length field has 10 bits: no body is longer.
MAX_BODY = 0x3FF
_LEN_MASK = 0x03FF
_ENCRYPTION_MASK = 0x1C00
_SUBPACKAGE = 0x2000
_VERSION_FLAG = 0x4000


class Malformed(ValueError):
    """A frame that cannot be read. ``header`` is set when the header itself could be read,
    so the gateway can still answer the message (general response, result 2)."""

    def __init__(self, reason: str, header: Header | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.header = header


@dataclass(frozen=True)
class Header:
    msg_id: int
    phone: str  # the BCD digits as text, leading zeros kept ("013800138000")
    serial: int
    body_length: int = 0
    version: int | None = None  # the 2019 edition's protocol version; None: 2013
    encrypted: bool = False
    packages: tuple[int, int] | None = None  # (count, number) of a subpackaged message


@dataclass(frozen=True)
class Frame:
    header: Header
    body: bytes


# -- escaping and check code ---------------------------------------------------------------


def escape(raw: bytes) -> bytes:
    return raw.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def unescape(data: bytes) -> bytes:
    """Undo the escaping; a ``0x7d`` not followed by 0x01 or 0x02 is malformed."""
    if ESC not in data:
        return data
    # Every 0x7d of an escaped frame starts a pair, so when each one is followed by 0x01 or
    # 0x02 two replaces undo it (C speed); the byte loop below only names a bad escape.
    if data.count(b"\x7d") == data.count(b"\x7d\x01") + data.count(b"\x7d\x02"):
        return data.replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b != ESC:
            out.append(b)
            i += 1
            continue
        nxt = data[i + 1] if i + 1 < n else None
        if nxt == 0x01:
            out.append(ESC)
        elif nxt == 0x02:
            out.append(FLAG)
        else:
            raise Malformed(f"bad escape 0x7d {'end' if nxt is None else f'0x{nxt:02x}'}")
        i += 2
    return bytes(out)


def check_code(data: bytes) -> int:
    """XOR of every byte; numpy for frames longer than a few words (a 0x0704 is ~1 kB, and a
    byte loop costs more than decoding its fixes)."""
    if len(data) < 64:
        x = 0
        for b in data:
            x ^= b
        return x
    return int(np.bitwise_xor.reduce(np.frombuffer(data, np.uint8)))


# -- BCD -----------------------------------------------------------------------------------


def bcd_decode(data: bytes) -> str:
    """BCD bytes → digits; a nibble above 9 is malformed."""
    text = data.hex()
    if not text.isdigit():
        raise Malformed(f"not BCD: {text}")
    return text


def bcd_encode(digits: str, size: int) -> bytes:
    """Digits → ``size`` BCD bytes, left-padded with zeros."""
    if not digits.isdigit() or len(digits) > 2 * size:
        raise ValueError(f"not {2 * size} BCD digits: {digits!r}")
    return bytes.fromhex(digits.rjust(2 * size, "0"))


# -- header ----------------------------------------------------------------------------------


def parse_header(raw: bytes) -> tuple[Header, int]:
    """The header at the start of ``raw`` (unescaped, check code removed) and its length."""
    if len(raw) < 12:
        raise Malformed(f"frame of {len(raw)} bytes is shorter than a header")
    msg_id, props = struct.unpack_from(">HH", raw, 0)
    version: int | None = None
    if props & _VERSION_FLAG:  # 2019: version byte, BCD[10] phone
        if len(raw) < 17:
            raise Malformed(f"frame of {len(raw)} bytes is shorter than a 2019 header")
        version = raw[4]
        phone_raw, pos = raw[5:15], 15
    else:
        phone_raw, pos = raw[4:10], 10
    (serial,) = struct.unpack_from(">H", raw, pos)
    pos += 2
    packages = None
    if props & _SUBPACKAGE:
        if len(raw) < pos + 4:
            raise Malformed("subpackaged frame too short for its package fields")
        packages = struct.unpack_from(">HH", raw, pos)
        pos += 4
    phone = bcd_decode(phone_raw)  # not BCD: no header to answer to
    header = Header(
        msg_id=msg_id,
        phone=phone,
        serial=serial,
        body_length=props & _LEN_MASK,
        version=version,
        encrypted=bool(props & _ENCRYPTION_MASK),
        packages=packages,
    )
    return header, pos


def decode_frame(segment: bytes) -> Frame:
    """One escaped frame without its ``0x7e`` delimiters → header and body.

    Raises ``Malformed`` (with the header when it was readable) for a bad escape, a bad check
    code, or a body length that disagrees with the properties."""
    raw = unescape(segment)
    if len(raw) < 13:
        raise Malformed(f"frame of {len(raw)} bytes is shorter than header + check code")
    content, check = raw[:-1], raw[-1]
    header, pos = parse_header(content)
    if check_code(content) != check:
        raise Malformed(f"check code 0x{check:02x}, computed 0x{check_code(content):02x}", header)
    body = content[pos:]
    if len(body) != header.body_length:
        raise Malformed(f"body is {len(body)} bytes, its header says {header.body_length}", header)
    return Frame(header, body)


def encode_frame(
    msg_id: int,
    phone: str,
    serial: int,
    body: bytes = b"",
    version: int | None = None,
    packages: tuple[int, int] | None = None,
) -> bytes:
    """A whole frame on the wire, delimiters included (2019 header when ``version`` is set)."""
    if len(body) > MAX_BODY:
        raise ValueError(f"body of {len(body)} bytes: at most {MAX_BODY}")
    props = len(body)
    if packages is not None:
        props |= _SUBPACKAGE
    if version is not None:
        props |= _VERSION_FLAG
        head = struct.pack(">HHB", msg_id, props, version) + bcd_encode(phone, 10)
    else:
        head = struct.pack(">HH", msg_id, props) + bcd_encode(phone, 6)
    head += struct.pack(">H", serial & 0xFFFF)
    if packages is not None:
        head += struct.pack(">HH", *packages)
    content = head + body
    return bytes([FLAG]) + escape(content + bytes([check_code(content)])) + bytes([FLAG])


# -- the stream ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Oversized:
    """Bytes dropped because no delimiter came within the size limit."""

    size: int


class FrameReader:
    """Splits a TCP byte stream into escaped frames, whatever the reads' boundaries.

    Every ``0x7e`` both ends a frame and may start the next, so ``7e A 7e 7e B 7e`` and
    ``7e A 7e B 7e`` both give A and B, and garbage between frames becomes one bad segment
    (refused by ``decode_frame``) instead of costing the good frame after it. Bytes before the
    first ``0x7e`` are skipped (``skipped`` counts them). A frame growing past ``max_frame``
    bytes without a delimiter is dropped (an ``Oversized`` item) and the reader waits for the
    next ``0x7e``, so memory per connection stays bounded."""

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self.skipped = 0
        self._buf = bytearray()
        self._open = False  # inside a frame (a 0x7e was seen)
        self._dropping = 0  # bytes of an oversized frame dropped so far

    def feed(self, data: bytes) -> Iterator[bytes | Oversized]:
        """Segments (escaped, without delimiters) completed by ``data``, in order."""
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            end = data.find(FLAG, pos)
            if not self._open:
                if end < 0:
                    self.skipped += len(view) - pos
                    return
                self.skipped += end - pos
                self._open, pos = True, end + 1
                continue
            chunk = view[pos:] if end < 0 else view[pos:end]
            if self._dropping:
                self._dropping += len(chunk)
            elif len(self._buf) + len(chunk) > self.max_frame:
                self._dropping = len(self._buf) + len(chunk)
                self._buf.clear()
            else:
                self._buf += chunk
            if end < 0:
                return
            pos = end + 1
            if self._dropping:
                yield Oversized(self._dropping)
                self._dropping = 0
            elif self._buf:
                yield bytes(self._buf)
                self._buf.clear()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held."""
        return len(self._buf)
