/* sipline._speedups: C twins of scan.via_line_parts and scan.sip_uri_parts, the quick
 * patterns for a plain Via line (RFC 3261 §20.42) and a plain SIP URI (§19.1.1). The
 * Python functions (regexes) are the reference: the same parts or None for every input
 * (tests/core/test_speedups.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_speedups.h"

/* --- scan.via_line_parts: the regex _VIA_LINE_QUICK, matched by hand ---------------
 *   [^:]*+ : [ \t]*+ SIP/2\.0/ (token++) SP (?:(IPV4_OCTETS)|(HOSTNAME_QUICK))
 *   (?::([0-9]{1,5}))? (QUICK_PARAMS) [ \t]*+            (fullmatch)
 * Every quantifier that could backtrack meets a character it cannot give back to (a
 * digit run before a non-digit, possessive runs), so one forward pass decides. */

static int
is_alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* (?::([0-9]{1,5}))? from p: the port span (ps == pe when absent) and where the rest
 * starts, or -1. More than 5 digits fails: {1,5} then a digit, which nothing after the
 * port may start with. */
static Py_ssize_t
port_span(const unsigned char *b, Py_ssize_t p, Py_ssize_t n, Py_ssize_t *ps, Py_ssize_t *pe)
{
    *ps = *pe = p;
    if (p < n && b[p] == ':') {
        Py_ssize_t d = p + 1;
        while (d < n && is_digit(b[d]))
            d++;
        if (d == p + 1 || d - (p + 1) > 5)
            return -1;
        *ps = p + 1;
        *pe = d;
        return d;
    }
    return p;
}

/* (?::([0-9]{1,5}))?((?:;[T]++(?:=[T:\[\]]++)?)*+)[ \t]*+ then the end, from p.
 * On a match: the port span (ps == pe when absent) and the params span. */
static int
via_rest(const unsigned char *b, Py_ssize_t p, Py_ssize_t n, Py_ssize_t *ps, Py_ssize_t *pe,
         Py_ssize_t *qs, Py_ssize_t *qe)
{
    p = port_span(b, p, n, ps, pe);
    if (p < 0)
        return 0;
    *qs = p;
    while (p < n && b[p] == ';' && p + 1 < n && sipline_is_token[b[p + 1]]) {
        p++;
        while (p < n && sipline_is_token[b[p]])
            p++;
        if (p + 1 < n && b[p] == '=' &&
            (sipline_is_token[b[p + 1]] || b[p + 1] == ':' || b[p + 1] == '[' || b[p + 1] == ']')) {
            p++;
            while (p < n && (sipline_is_token[b[p]] || b[p] == ':' || b[p] == '[' || b[p] == ']'))
                p++;
        }
    }
    *qe = p;
    while (p < n && (b[p] == ' ' || b[p] == '\t'))
        p++;
    return p == n;
}

/* IPV4_OCTETS from p: four runs of 1-3 digits, each at most 255, joined by dots; the end
 * (after the fourth run's last digit) or -1. A shorter fourth octet would leave a digit
 * that the rest of the pattern cannot start with, so only the whole run counts. */
static Py_ssize_t
ipv4_end(const unsigned char *b, Py_ssize_t p, Py_ssize_t n)
{
    for (int octet = 0; octet < 4; octet++) {
        if (octet > 0) {
            if (p >= n || b[p] != '.')
                return -1;
            p++;
        }
        Py_ssize_t d = p;
        int value = 0;
        while (d < n && is_digit(b[d]) && d - p < 3) {
            value = value * 10 + (b[d] - '0');
            d++;
        }
        if (d == p || value > 255)
            return -1;
        if (octet < 3 && d < n && is_digit(b[d]))
            return -1; /* a fourth digit: no octet ends there and no dot follows */
        p = d;
    }
    return p;
}

/* HOSTNAME_QUICK from p: labels ([A-Za-z0-9]++ (-++[A-Za-z0-9]++)*+) joined by dots,
 * possessively, then an optional final dot; the end or -1. `dot` is set when that
 * final dot was taken (the pattern may give it back). */
static Py_ssize_t
label_end(const unsigned char *b, Py_ssize_t p, Py_ssize_t n)
{
    if (p >= n || !is_alnum(b[p]))
        return -1;
    while (p < n && is_alnum(b[p]))
        p++;
    for (;;) {
        Py_ssize_t h = p;
        while (h < n && b[h] == '-')
            h++;
        if (h == p || h >= n || !is_alnum(b[h]))
            return p;
        p = h;
        while (p < n && is_alnum(b[p]))
            p++;
    }
}

static PyObject *
ascii_str(const unsigned char *b, Py_ssize_t start, Py_ssize_t end)
{
    return PyUnicode_DecodeASCII((const char *)b + start, end - start, NULL);
}

/* scan.via_line_parts(line) -> (transport, host, is_ipv4, port, params) or None */
PyObject *
sipline_via_line_parts(PyObject *self, PyObject *args)
{
    PyObject *line;
    if (!PyArg_ParseTuple(args, "S:via_line_parts", &line))
        return NULL;
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(line);
    Py_ssize_t n = PyBytes_GET_SIZE(line);
    const unsigned char *colon = memchr(b, ':', (size_t)n);
    if (colon == NULL)
        Py_RETURN_NONE;
    Py_ssize_t p = colon - b + 1;
    while (p < n && (b[p] == ' ' || b[p] == '\t'))
        p++;
    if (n - p < 8 || memcmp(b + p, "SIP/2.0/", 8) != 0)
        Py_RETURN_NONE;
    p += 8;
    Py_ssize_t ts = p;
    while (p < n && sipline_is_token[b[p]])
        p++;
    Py_ssize_t te = p;
    if (te == ts || p >= n || b[p] != ' ')
        Py_RETURN_NONE;
    p++;
    Py_ssize_t hs = p, he, ps, pe, qs, qe;
    int is_ipv4 = 0;
    he = ipv4_end(b, hs, n);
    if (he >= 0 && via_rest(b, he, n, &ps, &pe, &qs, &qe)) {
        is_ipv4 = 1;
    }
    else {
        he = label_end(b, hs, n);
        if (he < 0)
            Py_RETURN_NONE;
        while (he + 1 < n && b[he] == '.' && is_alnum(b[he + 1])) {
            he = label_end(b, he + 1, n);
        }
        /* \.? : take a final dot, or give it back if the rest needs that */
        if (he < n && b[he] == '.' && via_rest(b, he + 1, n, &ps, &pe, &qs, &qe))
            he++;
        else if (!via_rest(b, he, n, &ps, &pe, &qs, &qe))
            Py_RETURN_NONE;
    }
    PyObject *port = NULL;
    if (pe > ps) {
        long value = 0;
        for (Py_ssize_t i = ps; i < pe; i++)
            value = value * 10 + (b[i] - '0');
        port = PyLong_FromLong(value);
    }
    else {
        port = Py_NewRef(Py_None);
    }
    PyObject *transport = ascii_str(b, ts, te);
    PyObject *host = ascii_str(b, hs, he);
    PyObject *params = ascii_str(b, qs, qe);
    PyObject *result = NULL;
    if (port != NULL && transport != NULL && host != NULL && params != NULL)
        result = PyTuple_Pack(5, transport, host, is_ipv4 ? Py_True : Py_False, port, params);
    Py_XDECREF(port);
    Py_XDECREF(transport);
    Py_XDECREF(host);
    Py_XDECREF(params);
    return result;
}

/* --- scan.sip_uri_parts: the regex _SIP_QUICK_RE, matched by hand -----------------
 *   (sips?):(?:([U&=+$,]++)@)?(?:(IPV4_OCTETS)|(HOSTNAME_QUICK))
 *   (?::([0-9]{1,5}))?((?:;[P]++(?:=[P]++)?)*+)            (fullmatch)
 * U: unreserved = alphanum / - _ . ! ~ * ' ( ); P: unreserved / [ ] / : & + $ */

static int
is_unreserved(unsigned char c)
{
    return is_alnum(c) || (c != 0 && strchr("-_.!~*'()", c) != NULL);
}

static int
is_user_char(unsigned char c)
{
    return is_unreserved(c) || (c != 0 && strchr("&=+$,", c) != NULL);
}

static int
is_param_char(unsigned char c)
{
    return is_unreserved(c) || (c != 0 && strchr("[]/:&+$", c) != NULL);
}

/* (?::([0-9]{1,5}))?((?:;[P]++(?:=[P]++)?)*+) then the end, from p */
static int
uri_rest(const unsigned char *b, Py_ssize_t p, Py_ssize_t n, Py_ssize_t *ps, Py_ssize_t *pe,
         Py_ssize_t *qs)
{
    p = port_span(b, p, n, ps, pe);
    if (p < 0)
        return 0;
    *qs = p;
    while (p + 1 < n && b[p] == ';' && is_param_char(b[p + 1])) {
        p++;
        while (p < n && is_param_char(b[p]))
            p++;
        if (p + 1 < n && b[p] == '=' && is_param_char(b[p + 1])) {
            p++;
            while (p < n && is_param_char(b[p]))
                p++;
        }
    }
    return p == n;
}

/* scan.sip_uri_parts(text) -> (scheme, user, host, is_ipv4, port, params) or None */
PyObject *
sipline_sip_uri_parts(PyObject *self, PyObject *args)
{
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U:sip_uri_parts", &text))
        return NULL;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return NULL;
#endif
    if (!PyUnicode_IS_ASCII(text))
        Py_RETURN_NONE; /* every character the pattern accepts is ASCII */
    const unsigned char *b = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), p;
    if (n >= 4 && memcmp(b, "sip:", 4) == 0)
        p = 4;
    else if (n >= 5 && memcmp(b, "sips:", 5) == 0)
        p = 5;
    else
        Py_RETURN_NONE;
    Py_ssize_t scheme_end = p - 1, us = p, ue = p;
    while (ue < n && is_user_char(b[ue]))
        ue++;
    int has_user = ue > us && ue < n && b[ue] == '@';
    Py_ssize_t hs = has_user ? ue + 1 : p, he, ps, pe, qs;
    int is_ipv4 = 0;
    he = ipv4_end(b, hs, n);
    if (he >= 0 && uri_rest(b, he, n, &ps, &pe, &qs)) {
        is_ipv4 = 1;
    }
    else {
        he = label_end(b, hs, n);
        if (he < 0)
            Py_RETURN_NONE;
        while (he + 1 < n && b[he] == '.' && is_alnum(b[he + 1]))
            he = label_end(b, he + 1, n);
        if (he < n && b[he] == '.' && uri_rest(b, he + 1, n, &ps, &pe, &qs))
            he++;
        else if (!uri_rest(b, he, n, &ps, &pe, &qs))
            Py_RETURN_NONE;
    }
    PyObject *port;
    if (pe > ps) {
        long value = 0;
        for (Py_ssize_t i = ps; i < pe; i++)
            value = value * 10 + (b[i] - '0');
        port = PyLong_FromLong(value);
    }
    else {
        port = Py_NewRef(Py_None);
    }
    PyObject *scheme = ascii_str(b, 0, scheme_end);
    PyObject *user = has_user ? ascii_str(b, us, ue) : Py_NewRef(Py_None);
    PyObject *host = ascii_str(b, hs, he);
    PyObject *params = ascii_str(b, qs, n);
    PyObject *result = NULL;
    if (port != NULL && scheme != NULL && user != NULL && host != NULL && params != NULL)
        result = PyTuple_Pack(6, scheme, user, host, is_ipv4 ? Py_True : Py_False, port, params);
    Py_XDECREF(port);
    Py_XDECREF(scheme);
    Py_XDECREF(user);
    Py_XDECREF(host);
    Py_XDECREF(params);
    return result;
}
