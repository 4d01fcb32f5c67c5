"""Where a webhook may point (issue 18 §5: no SSRF). The one home of the rule.

An administrator's webhook URL makes *this server* send requests, from inside the network
it lives in. Without a check, ``http://127.0.0.1:<database port>/``,
``http://169.254.169.254/`` (a cloud's metadata service) or ``http://10.x.y.z/`` (the
intranet) turn the webhook worker into a proxy for whoever holds an admin key.

The rule, applied to *every* address the host name resolves to (one refused address refuses
the target: otherwise a name with a public and a loopback address would be a coin toss):

1. only ``http`` and ``https``;
2. the database's own endpoint (its address *and* port, from the database URL) is always
   refused — nothing legitimate speaks HTTP there, so no allow-list entry re-opens it;
3. an allow-list entry (a CIDR, or an exact host name) lets a deployment reach receivers on
   its intranet; a name entry skips the address checks below for that name;
4. any other address of the database host is refused;
5. loopback, link-local, private (RFC 1918, unique-local fc00::/7), unspecified, multicast,
   reserved and every other non-global range are refused — also when written as an
   IPv4-mapped (``::ffff:127.0.0.1``), 6to4 or Teredo IPv6 address.

The check runs when a subscription is created (a 422 naming ``url``) and again before every
delivery (geo_api/webhooks.py), which then connects to the address checked here and to no
other, so a name that re-resolves between the check and the connection (DNS rebinding) gains
nothing. The resolver is injectable so tests can play a rebinding DNS server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from psycopg.conninfo import conninfo_to_dict

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``(host, port) -> addresses``; raises ``OSError`` when the name does not resolve.
Resolver = Callable[[str, int], Awaitable[list[str]]]

SCHEMES: Final = {"http": 80, "https": 443}
POSTGRES_PORT: Final = 5432


class TargetRefused(Exception):
    """The URL may not be called; ``reason`` is short, ours, and safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """A checked URL and the one address the request must go to."""

    url: str
    scheme: str
    host: str  # as written in the URL, lower case (the Host header and TLS name)
    port: int
    address: str  # the checked address to connect to


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address of ``host`` (A and AAAA), through the event loop's getaddrinfo."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address, where the packets end up
    return None


def special_range(ip: IPAddress) -> str | None:
    """Why ``ip`` is no public internet address (a word for the error), or None if it is."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner = special_range(embedded)
        return f"{inner} (IPv6-embedded {embedded})" if inner else None
    # Most specific first: 169.254.169.254 is "link-local", not just "private".
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),  # before "private": Python counts 240/4 as both
        ("private", ip.is_private),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("not globally routable", not ip.is_global),  # 100.64.0.0/10 and the like
    )
    return next((word for word, hit in checks if hit), None)


def parse_allow_list(entries: Iterable[str]) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    """CIDRs (or single addresses) and host names; raises ValueError naming a bad entry."""
    nets: list[IPNetwork] = []
    names: set[str] = set()
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        labels = entry.rstrip(".").split(".")
        if not all(label and len(label) <= 63 for label in labels) or any(
            not ch.isalnum() and ch not in "-_" for ch in entry.rstrip(".").replace(".", "")
        ):
            raise ValueError(f"{raw!r} is neither a CIDR nor a host name")
        names.add(entry.rstrip("."))
    return tuple(nets), frozenset(names)


def database_endpoints(database_url: str | None) -> list[tuple[str, int]]:
    """``(host, port)`` pairs of the database URL (libpq allows several); a socket path or
    an empty host is the local machine, whose loopback port it may also listen on."""
    if not database_url:
        return []
    try:
        info = conninfo_to_dict(database_url)
    except Exception:  # an unusable URL fails elsewhere, loudly; here it protects nothing
        return []
    hosts = str(info.get("host") or info.get("hostaddr") or "").split(",")
    ports = str(info.get("port") or "").split(",")
    out = []
    for i, host in enumerate(hosts):
        raw_port = ports[i] if i < len(ports) else ports[-1]
        port = int(raw_port) if raw_port.strip().isdigit() else POSTGRES_PORT
        out.append(("localhost" if not host or host.startswith("/") else host, port))
    return out


class TargetGuard:
    """Checks webhook URLs; one per process, shared by the route and the delivery worker."""

    def __init__(
        self,
        allow: Sequence[str] = (),
        database_url: str | None = None,
        resolver: Resolver | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.allow_nets, self.allow_names = parse_allow_list(allow)
        self.db_endpoints = database_endpoints(database_url)
        self.resolver: Resolver = resolver or system_resolver
        self.timeout_s = timeout_s

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:  # a literal needs no resolver (and a test's fake one need not know it)
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            found = await asyncio.wait_for(self.resolver(host, port), self.timeout_s)
        except TimeoutError:
            raise TargetRefused(f"{host} did not resolve within {self.timeout_s:g} s") from None
        except (OSError, ValueError):  # UnicodeError (an empty or 64+ char label) too
            raise TargetRefused(f"{host} does not resolve") from None
        addresses = []
        for a in found:
            try:
                addresses.append(ipaddress.ip_address(a.split("%", 1)[0]))
            except ValueError:
                continue
        if not addresses:
            raise TargetRefused(f"{host} does not resolve")
        return addresses

    async def _database(self) -> tuple[set[tuple[IPAddress, int]], set[IPAddress]]:
        """The database's endpoints and host addresses, resolved now (they may move too)."""
        endpoints: set[tuple[IPAddress, int]] = set()
        for host, port in self.db_endpoints:
            try:
                for ip in await self._addresses(host, port):
                    endpoints.add((ip, port))
            except TargetRefused:
                continue  # a database name we cannot resolve is one we cannot be sent to
        return endpoints, {ip for ip, _ in endpoints}

    def _allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allow_nets)

    async def check(self, url: str) -> Target:
        """The target to connect to, or ``TargetRefused`` saying why not."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise TargetRefused(f"not a valid URL ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise TargetRefused("must be an http:// or https:// URL")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise TargetRefused("has no host")
        port = port or SCHEMES[scheme]
        addresses = await self._addresses(host, port)
        db_endpoints, db_hosts = await self._database()
        named_ok = host in self.allow_names
        for ip in addresses:
            shown = host if host == str(ip) else f"{host} resolves to {ip}"
            if (ip, port) in db_endpoints or (
                ip.version == 6 and (_embedded_ipv4(ip), port) in db_endpoints
            ):
                raise TargetRefused(f"{shown}:{port}, the database's own address")
            if named_ok or self._allowed(ip):
                continue
            why = [w for w in (special_range(ip), ip in db_hosts and "the database host") if w]
            if why:
                raise TargetRefused(f"{shown} ({'; '.join(why)}); not on the webhook allow-list")
        return Target(url, scheme, host, port, str(addresses[0]))
