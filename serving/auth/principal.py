from __future__ import annotations

from dataclasses import dataclass

# backoffice: Blocks staff reading a tenant's figures the customer does not see (the guarantee's margin)
ROLES = ("viewer", "admin", "backoffice")


@dataclass(frozen=True)
class Principal:
    """Who is calling, taken only from a verified token's claims."""

    subject: str
    tenant_id: str
    roles: frozenset[str]
    token_use: str
    expires_at: float

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_backoffice(self) -> bool:
        return "backoffice" in self.roles


class AuthError(Exception):
    """The token is missing, forged, expired or not meant for us (-> 401)."""


class Forbidden(Exception):
    """A valid token that may not do this (-> 403)."""
