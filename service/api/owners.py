"""Who a request is: the owner named by its API key (``CNNPLAN_API_KEYS``), the admin, or nobody.

``CNNPLAN_API_KEYS`` lists ``owner=key`` pairs separated by commas, for example
``alice=k1-...,bob=sha256:<64 hex digits>``; a key may be given as the SHA-256 digest of the key, so
the configuration need not hold the key itself. Only digests are kept in memory after parsing, and
a presented key is compared digest against digest in constant time (`hmac.compare_digest`, every
configured digest looked at, so the time does not tell which one matched). ``CNNPLAN_API_KEY`` (a
single key) is the owner ``default``; ``CNNPLAN_ADMIN_KEY`` is the owner ``admin`` and sees every job.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from cnnplan.service.worker.jobs import Caller

if TYPE_CHECKING:
    from cnnplan.service.settings import Settings

OWNER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
DIGEST = re.compile(r"sha256:([0-9a-fA-F]{64})")
SINGLE_KEY_OWNER = "default"
ADMIN_OWNER = "admin"


def key_digest(key: str) -> str:
    """The hex SHA-256 of a key (what is stored and compared; the key itself is not kept)."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_api_keys(text: str) -> tuple[tuple[str, str], ...]:
    """``owner=key,owner=sha256:<hex>`` -> ((owner, hex digest), ...); raises ValueError naming the bad entry.

    Owner names are 1-64 characters of letters, digits and ``_.@-``; a key is at least 16 characters;
    the same key (digest) may not be listed twice; ``admin`` is reserved for ``CNNPLAN_ADMIN_KEY``."""
    pairs: list[tuple[str, str]] = []
    for index, entry in enumerate(part.strip() for part in text.split(",")):
        owner, sep, key = entry.partition("=")
        owner, key = owner.strip(), key.strip()
        if not sep or not OWNER_NAME.fullmatch(owner):
            raise ValueError(f"entry {index}: expected owner=key with an owner name of letters, digits, _.@- ")
        if owner == ADMIN_OWNER:
            raise ValueError(f"entry {index}: the owner name 'admin' is reserved for CNNPLAN_ADMIN_KEY")
        matched = DIGEST.fullmatch(key)
        if matched is None and len(key) < 16:
            raise ValueError(f"entry {index} ({owner}): a key needs at least 16 characters (or sha256:<hex>)")
        digest = matched.group(1).lower() if matched else key_digest(key)
        if any(digest == known for _, known in pairs):
            raise ValueError(f"entry {index} ({owner}): this key is already listed")
        pairs.append((owner, digest))
    return tuple(pairs)


@lru_cache(maxsize=16)
def _owner_digests(api_keys: str | None, api_key: str | None, admin_key: str | None) -> tuple[tuple[str, str], ...]:
    pairs = list(parse_api_keys(api_keys)) if api_keys else []
    if api_key:
        pairs.append((SINGLE_KEY_OWNER, key_digest(api_key)))
    if admin_key:
        pairs.append((ADMIN_OWNER, key_digest(admin_key)))
    return tuple(pairs)


def _secret(value) -> str | None:
    return None if value is None else value.get_secret_value()


def owner_digests(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Every configured (owner, key digest), the admin's last; empty on a server without keys."""
    return _owner_digests(_secret(settings.api_keys), _secret(settings.api_key), _secret(settings.admin_key))


def keys_configured(settings: Settings) -> bool:
    """True when any key (``CNNPLAN_API_KEY``, ``CNNPLAN_API_KEYS`` or ``CNNPLAN_ADMIN_KEY``) is set."""
    return bool(settings.api_key or settings.api_keys or settings.admin_key)


def resolve_caller(settings: Settings, presented: str | None) -> Caller | None:
    """The caller a presented key makes: `Caller(None)` (shared) without keys; the key's owner; None when
    keys are configured and the key is missing or matches none (the caller of that is a 401)."""
    if not keys_configured(settings):
        return Caller(None)
    if presented is None:
        return None
    given = key_digest(presented)
    found: str | None = None
    for owner, digest in owner_digests(settings):
        if hmac.compare_digest(given, digest) and found is None:
            found = owner
    if found is None:
        return None
    return Caller(found, admin=found == ADMIN_OWNER and settings.admin_key is not None)


__all__ = ["keys_configured", "key_digest", "owner_digests", "parse_api_keys", "resolve_caller"]
