"""o= versioning across re-offers and answers (RFC 3264 §8).

Within a dialog every SDP a side sends keeps its first o= line, except that the
version goes up by exactly one whenever anything else in the description changed,
and stays put when nothing did (so a peer can tell a no-op re-INVITE at a glance).
"""

from __future__ import annotations

import copy
from dataclasses import replace

from .model import SessionDescription

__all__ = ["check_version", "next_version", "same_content"]


def _with_origin(
    sd: SessionDescription, like: SessionDescription, version: int
) -> SessionDescription:
    result = copy.deepcopy(sd)
    result.origin = replace(like.origin, session_version=version)
    return result


def same_content(a: SessionDescription, b: SessionDescription) -> bool:
    """Equal in everything but the o= version."""
    return a == _with_origin(b, a, a.origin.session_version)


def next_version(
    previous: SessionDescription | None, current: SessionDescription
) -> SessionDescription:
    """`current` stamped for sending after `previous` (None for the first SDP of a dialog).

    The o= line is taken from `previous`, its version incremented only if the content
    changed (RFC 3264 §8). `current` itself is not modified.
    """
    if previous is None:
        return copy.deepcopy(current)
    version = previous.origin.session_version
    if not same_content(previous, current):
        version += 1
    return _with_origin(current, previous, version)


def check_version(previous: SessionDescription, current: SessionDescription) -> list[str]:
    """The RFC 3264 §8 rules `current` breaks as the successor of `previous`."""
    problems = []
    before, after = previous.origin, current.origin
    fixed = ("username", "session_id", "nettype", "addrtype", "address")
    problems += [
        f"o= {name} changed from {getattr(before, name)!r} to {getattr(after, name)!r}"
        for name in fixed
        if getattr(before, name) != getattr(after, name)
    ]
    if same_content(previous, current):
        if after.session_version != before.session_version:
            problems.append(
                f"o= version changed ({before.session_version} -> {after.session_version})"
                " although the description did not"
            )
    elif after.session_version != before.session_version + 1:
        problems.append(
            f"o= version is {after.session_version}, expected {before.session_version + 1}"
            " after a change"
        )
    return problems
