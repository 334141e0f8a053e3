"""The byte scanners the parser and the framer call: the C ones when available.

`sipline.core.scan` (and, for the digest auth-param scanner, `auth_params.parse_value`)
is the reference; `sipline._speedups` implements the same functions in C. The C ones are used unless the extension was not built or
`SIPLINE_PURE=1` is set (`sipline.accel` decides); `accelerated` says which.
"""

from __future__ import annotations

from collections.abc import Callable

from sipline.accel import speedups
from sipline.core import auth_params, scan

__all__ = [
    "accelerated",
    "content_length_of",
    "find_head_end",
    "parse_auth_value",
    "sip_uri_parts",
    "split_head",
    "via_line_parts",
]

split_head: Callable[[bytes, int, int], tuple[bytes, list[bytes], list[str]]]
find_head_end: Callable[[bytes | bytearray, int], int]
content_length_of: Callable[[bytes], int]
sip_uri_parts: Callable[[str], tuple[str, str | None, str, bool, int | None, str] | None]
via_line_parts: Callable[[bytes], tuple[str, str, bool, int | None, str] | None]
parse_auth_value: Callable[[str | bytes, str], tuple[str, auth_params.Params | str]]

if speedups is not None:
    split_head = speedups.split_head
    find_head_end = speedups.find_head_end
    content_length_of = speedups.content_length_of
    parse_auth_value = speedups.parse_value
    via_line_parts = speedups.via_line_parts
    sip_uri_parts = speedups.sip_uri_parts
else:
    split_head = scan.split_head
    find_head_end = scan.find_head_end
    content_length_of = scan.content_length_of
    parse_auth_value = auth_params.parse_value
    via_line_parts = scan.via_line_parts
    sip_uri_parts = scan.sip_uri_parts

accelerated = speedups is not None
