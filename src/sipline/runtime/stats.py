"""The endpoint's counters, for monitoring (plain integers, updated in place)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EndpointStats"]


@dataclass(slots=True)
class EndpointStats:
    requests_in: int = 0
    responses_in: int = 0
    malformed_requests: int = 0
    malformed_responses: int = 0
    stateless_rejections: int = 0
    stateless_answers: int = 0
    handler_errors: int = 0
    overload_rejections: int = 0  # new requests answered 503 + Retry-After (§21.5.4)
    shed_acks: int = 0  # ACKs for those 503s, absorbed here
