"""RFC 3261 §25 grammar rules as named regex fragments, compiled once.

Each fragment quotes the ABNF it implements. The parsers in `uri`, `params`,
`views` and `message` build on these; nothing here allocates per message.
"""

from __future__ import annotations

import re

# alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"   (token, §25.1)
TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
TOKEN = rf"[{TOKEN_CHARS}]+"
TOKEN_RE = re.compile(TOKEN)

# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
#        "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}")
WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
# callid = word [ "@" word ]
CALLID_RE = re.compile(rf"{WORD}(?:@{WORD})?")
CALLID_BYTES_RE = re.compile(rf"{WORD}(?:@{WORD})?".encode())

# Method = INVITEm / ... / extension-method ; extension-method = token
METHOD_RE = re.compile(TOKEN)

# escaped = "%" HEXDIG HEXDIG
ESCAPED = r"%[0-9A-Fa-f]{2}"
# unreserved = alphanum / mark ; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
# user = 1*( unreserved / escaped / user-unreserved )
# user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
USER_RE = re.compile(rf"(?:[{UNRESERVED}&=+$,;?/]|{ESCAPED})+")
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
PASSWORD_RE = re.compile(rf"(?:[{UNRESERVED}&=+$,]|{ESCAPED})*")
# paramchar = param-unreserved / unreserved / escaped
# param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
PARAMCHARS_RE = re.compile(rf"(?:[{UNRESERVED}\[\]/:&+$]|{ESCAPED})+")
# hname / hvalue: 1*( hnv-unreserved / unreserved / escaped ) (hvalue may be empty)
# hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
HNAME_RE = re.compile(rf"(?:[{UNRESERVED}\[\]/?:+$]|{ESCAPED})+")
HVALUE_RE = re.compile(rf"(?:[{UNRESERVED}\[\]/?:+$]|{ESCAPED})*")

# hostname = *( domainlabel "." ) toplabel [ "." ]   (kept liberal on label shape)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
HOSTNAME = rf"{_LABEL}(?:\.{_LABEL})*\.?"
# The same language without backtracking (a label is alphanumeric runs joined by
# hyphen runs), for the fast paths where every match counts.
_LABEL_QUICK = r"[A-Za-z0-9]++(?:-++[A-Za-z0-9]++)*+"
HOSTNAME_QUICK = rf"{_LABEL_QUICK}(?:\.{_LABEL_QUICK})*+\.?"
IPV4 = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"
# The same, each octet at most 255 (one to three digits, leading zeros allowed).
_OCTET = r"(?:[01]?[0-9]?[0-9]|2[0-4][0-9]|25[0-5])"
IPV4_OCTETS = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
# IPv6reference = "[" IPv6address "]"; checked further with ipaddress where it matters.
# RFC 5118 §4.10: tolerate the extra colon the RFC 3261 ABNF bug allows ("[2001:db8:::192.0.2.1]").
IPV6_BODY = r"[0-9A-Fa-f:.]+"
HOST_RE = re.compile(rf"(?:\[{IPV6_BODY}\]|{IPV4}|{HOSTNAME})")
HOSTNAME_RE = re.compile(HOSTNAME)
IPV4_RE = re.compile(IPV4)
IPV6_BODY_RE = re.compile(IPV6_BODY)

# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# absoluteURI (RFC 2396): scheme ":" opaque/hier part; no whitespace, no <>, no quotes.
ABSOLUTE_REST_RE = re.compile(r"[^\s<>\"]+")

# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT
VERSION_RE = re.compile(r"SIP/(\d+)\.(\d+)", re.IGNORECASE)

# Status-Code = 3DIGIT
STATUS_RE = re.compile(r"[1-6]\d\d")

WSP = " \t"

# The start of a raw header line up to its value: the name, the colon and the
# leading whitespace. A fast path matches `LINE_HEAD + value + LINE_TAIL` against the
# decoded line; when the value pattern holds no CR, LF or edge whitespace, the
# value it sees is exactly `Headers.get`'s (unfolded, trimmed).
LINE_HEAD = r"[^:]*+:[ \t]*+"
LINE_TAIL = r"[ \t]*+"
