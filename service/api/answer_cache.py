"""A bounded in-memory cache of rendered answers, and the HTTP caching semantics built on it.

Plans, reports and presets are pure functions of their (validated) request, so the rendered JSON of
one can be served again byte for byte. `AnswerCache` keeps the most recently used answers, at most
``max_entries`` of them and ``max_bytes`` of bodies in all (least recently used out first; an answer
larger than ``max_bytes`` is served but not kept), and counts hits and misses in the app's Prometheus
registry. `json_answer` serves an answer through it: GET answers carry a strong ``ETag`` (a BLAKE2b
digest of the body, so equal bodies have equal tags) and ``Cache-Control``, and a GET whose
``If-None-Match`` names the current tag gets ``304 Not Modified`` without a body (RFC 9110 13.1.2).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from cnnplan.service.api._responses import render_json


class Rendered(NamedTuple):
    """A rendered answer: its JSON body and the body's strong entity tag."""

    body: bytes
    etag: str


def entity_tag(body: bytes) -> str:
    """A strong ETag: ``"<32 hex digits of BLAKE2b-128(body)>"``; equal bodies, equal tags."""
    return f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


def request_key(*parts: Any) -> Hashable:
    """A hashable key from validated request models and plain values: models become tuples of their
    (field, value) pairs, lists become tuples, recursively (the canonical form of a validated body)."""
    return tuple(_freeze(part) for part in parts)


def _freeze(value: Any) -> Hashable:
    if isinstance(value, BaseModel):
        return (type(value).__name__, *((name, _freeze(item)) for name, item in value.__dict__.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item) for item in value)
    if isinstance(value, dict):
        return tuple((name, _freeze(item)) for name, item in value.items())
    return value


class AnswerCache:
    """LRU of `Rendered` answers bounded by entry count and body bytes (``max_entries=0`` disables it)."""

    def __init__(self, max_entries: int, max_bytes: int, registry: CollectorRegistry | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # the batch and preset routes run in worker threads
        self.hits = Counter("cnnplan_answer_cache_hits", "Answers served from the answer cache.", registry=registry)
        self.misses = Counter(
            "cnnplan_answer_cache_misses", "Answers computed because the answer cache lacked them.", registry=registry
        )
        entries = Gauge("cnnplan_answer_cache_entries", "Answers held by the answer cache.", registry=registry)
        entries.set_function(lambda: len(self._entries))
        size = Gauge(
            "cnnplan_answer_cache_bytes", "Bytes of answer bodies held by the answer cache.", registry=registry
        )
        size.set_function(lambda: self._bytes)

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes of bodies held now (never more than ``max_bytes``)."""
        return self._bytes

    def get(self, key: Hashable) -> Rendered | None:
        """The cached answer of `key` (now the most recently used), or None; counts a hit or a miss."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
        (self.hits if found is not None else self.misses).inc()
        return found

    def put(self, key: Hashable, rendered: Rendered) -> None:
        """Keep `rendered` under `key`, evicting least recently used answers until both bounds hold."""
        size = len(rendered.body)
        if not self.enabled or size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._entries[key] = rendered
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.body)

    def rendered(self, key_parts: tuple, build: Callable[[], Any]) -> Rendered:
        """The answer of ``request_key(*key_parts)``: from the cache, else ``build()`` (JSON-ready values or
        rendered bytes) rendered, tagged and kept (the key is not even built while the cache is off)."""
        if not self.enabled:
            body = _rendered(build())
            return Rendered(body, entity_tag(body))
        key = request_key(*key_parts)
        found = self.get(key)
        if found is not None:
            return found
        body = _rendered(build())
        rendered = Rendered(body, entity_tag(body))
        self.put(key, rendered)
        return rendered


def _rendered(content: Any) -> bytes:
    """JSON bytes of an answer given as JSON-ready values or already rendered."""
    return content if isinstance(content, bytes) else render_json(content)


CACHE_CONTROL = "public, max-age={max_age}"


def if_none_match(header: str | None, etag: str) -> bool:
    """Whether an If-None-Match value matches `etag`: ``*``, or a listed tag equal under the weak
    comparison RFC 9110 13.1.2 prescribes for it (``W/`` prefixes ignored)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def json_answer(request: Request, key_parts: tuple, build: Callable[[], Any], http_caching: bool) -> Response:
    """The JSON answer of the request `key_parts` (validated models and plain values, see `request_key`)
    through the app's answer cache; with `http_caching` (GET routes) it carries ETag and Cache-Control, and a
    matching If-None-Match gets 304 without a body."""
    cache: AnswerCache = request.app.state.answer_cache
    if not http_caching:
        if cache.enabled:
            return Response(cache.rendered(key_parts, build).body, media_type="application/json")
        return Response(_rendered(build()), media_type="application/json")
    rendered = cache.rendered(key_parts, build)
    headers = {
        "ETag": rendered.etag,
        "Cache-Control": CACHE_CONTROL.format(max_age=request.app.state.settings.http_cache_max_age),
    }
    if if_none_match(request.headers.get("if-none-match"), rendered.etag):
        return Response(status_code=304, headers=headers)
    return Response(rendered.body, media_type="application/json", headers=headers)


__all__ = ["AnswerCache", "Rendered", "entity_tag", "if_none_match", "json_answer", "request_key"]
