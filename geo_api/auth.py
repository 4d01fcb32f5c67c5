"""Who is calling. Every route takes the caller from ``current_caller`` so roles can be added
here later (regulator, enterprise, officer) without touching any handler."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request


@dataclass(frozen=True)
class Caller:
    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    enterprise_id: int | None = None  # set for enterprise users: they see only their own data
    districts: frozenset[str] | None = None  # None = every district

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


ANONYMOUS_ADMIN = Caller(name="anonymous", roles=frozenset({"admin"}))


async def current_caller(request: Request) -> Caller:
    """The demo has no login yet: everyone is an anonymous administrator."""
    return ANONYMOUS_ADMIN
