/* sipline._speedups: C versions of the byte scanners in sipline/core/scan.py (this file)
 * (the Via line and SIP URI matchers in _speedups_sip.c), and of the digest auth-param
 * scanner, auth_params.parse_value (_speedups_auth.c).
 *
 * Optional: built when a C compiler and Python's headers are present (setup.py),
 * selected by sipline/core/scanners.py unless SIPLINE_PURE=1. The Python functions
 * are the reference: each function here returns what its namesake returns, or raises
 * RemoteProtocolError with the same reason and status (tests/core/test_speedups.py).
 * CPython C API only; every read is bounds-checked against the buffer's length.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_speedups.h"

/* sipline.core.errors.RemoteProtocolError, imported on first use (importing it at
 * module load would import sipline.core from inside sipline.accel). */
static PyObject *remote_error = NULL;

/* RemoteProtocolError(reason, status) raised; always NULL. Steals `reason` (a str). */
PyObject *
sipline_raise_remote(PyObject *reason, int status)
{
    if (reason == NULL)
        return NULL;
    if (remote_error == NULL) {
        PyObject *mod = PyImport_ImportModule("sipline.core.errors");
        if (mod != NULL) {
            remote_error = PyObject_GetAttrString(mod, "RemoteProtocolError");
            Py_DECREF(mod);
        }
        if (remote_error == NULL) {
            Py_DECREF(reason);
            return NULL;
        }
    }
    PyObject *exc = PyObject_CallFunction(remote_error, "Oi", reason, status);
    Py_DECREF(reason);
    if (exc != NULL) {
        PyErr_SetObject(remote_error, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *
raise_remote(const char *reason, int status)
{
    return sipline_raise_remote(PyUnicode_FromString(reason), status);
}

/* token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")  §25.1 */
unsigned char sipline_is_token[256];

static void
init_tables(void)
{
    const char *extra = "-.!%*_+`'~";
    for (int c = 0; c < 256; c++)
        sipline_is_token[c] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    for (const char *p = extra; *p; p++)
        sipline_is_token[(unsigned char)*p] = 1;
}

/* Canonical keys made once: the compact forms (RFC 3261 §7.3.3, as headers.COMPACT_FORMS)
 * and the names nearly every message carries. Interned, so they are the very objects
 * the Python code's literals are. */
static const char *compact_long[26] = {
    "accept-contact", "referred-by", "content-type", "request-disposition",
    "content-encoding", "from", NULL, NULL, "call-id", "reject-contact", "supported",
    "content-length", "contact", "identity-info", "event", NULL, NULL, "refer-to",
    "subject", "to", "allow-events", "via", NULL, "session-expires", "identity", NULL,
};
static PyObject *compact_keys[26];

static const char *common_names[] = {
    "via", "from", "to", "call-id", "cseq", "contact", "max-forwards", "route",
    "record-route", "content-length", "content-type", "user-agent", "allow", "supported",
    "require", "proxy-require", "expires", "authorization", "proxy-authorization",
    "www-authenticate", "proxy-authenticate", "subject", "accept", "accept-encoding",
    "accept-language", "allow-events", "event", "server", "date", "timestamp", "organization",
    "min-expires", "unsupported", "session-expires", "min-se", "rseq", "rack", "refer-to",
    "referred-by", "p-asserted-identity", "p-preferred-identity", "privacy", "reason",
    "path", "service-route", "content-disposition", "content-encoding", "mime-version",
    "subscription-state", "sip-etag", "sip-if-match", "warning", "retry-after",
    "priority", "in-reply-to", "reply-to", "alert-info", "call-info", "error-info",
    "content-language", "authentication-info", "x-test",
};
#define N_COMMON (sizeof(common_names) / sizeof(common_names[0]))
static PyObject *common_keys[N_COMMON];
static Py_ssize_t common_lens[N_COMMON];

static int
init_keys(void)
{
    for (int i = 0; i < 26; i++) {
        if (compact_long[i] == NULL)
            continue;
        compact_keys[i] = PyUnicode_InternFromString(compact_long[i]);
        if (compact_keys[i] == NULL)
            return -1;
    }
    for (size_t i = 0; i < N_COMMON; i++) {
        common_keys[i] = PyUnicode_InternFromString(common_names[i]);
        if (common_keys[i] == NULL)
            return -1;
        common_lens[i] = (Py_ssize_t)strlen(common_names[i]);
    }
    return 0;
}

#define MAX_KEY_STACK 64

/* headers.key_from_raw: the canonical key of the name bytes before a colon, or NULL
 * with RemoteProtocolError set. */
static PyObject *
key_of_name(const unsigned char *name, Py_ssize_t n)
{
    while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
        n--;
    if (n == 0)
        return raise_remote("Malformed header field name", 400);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!sipline_is_token[name[i]])
            return raise_remote("Malformed header field name", 400);
    }
    if (n == 1) {
        unsigned char c = name[0] | 0x20;
        if (c >= 'a' && c <= 'z' && compact_keys[c - 'a'] != NULL) {
            Py_INCREF(compact_keys[c - 'a']);
            return compact_keys[c - 'a'];
        }
    }
    char stack[MAX_KEY_STACK];
    char *low = n <= MAX_KEY_STACK ? stack : PyMem_Malloc((size_t)n);
    if (low == NULL)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = name[i];
        low[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    PyObject *key = NULL;
    for (size_t i = 0; i < N_COMMON; i++) {
        if (common_lens[i] == n && memcmp(common_names[i], low, (size_t)n) == 0) {
            key = common_keys[i];
            Py_INCREF(key);
            break;
        }
    }
    if (key == NULL)
        key = PyUnicode_DecodeASCII(low, n, NULL);
    if (low != stack)
        PyMem_Free(low);
    return key;
}

/* One header field [f, f + flen): its canonical key and its raw bytes appended to
 * keys and lines; -1 with an exception set when it has no name before a colon. */
static int
add_field(const unsigned char *f, Py_ssize_t flen, PyObject *lines, PyObject *keys)
{
    const unsigned char *colon = memchr(f, ':', (size_t)flen);
    if (colon == NULL || colon == f) {
        raise_remote("Malformed header line (no colon)", 400);
        return -1;
    }
    PyObject *key = key_of_name(f, colon - f);
    if (key == NULL)
        return -1;
    int r = PyList_Append(keys, key);
    Py_DECREF(key);
    if (r < 0)
        return -1;
    PyObject *line = PyBytes_FromStringAndSize((const char *)f, flen);
    if (line == NULL)
        return -1;
    r = PyList_Append(lines, line);
    Py_DECREF(line);
    return r;
}

/* scan.split_head(head, max_headers, max_line_bytes) -> (start, lines, keys) */
static PyObject *
split_head(PyObject *self, PyObject *args)
{
    PyObject *head_obj;
    Py_ssize_t max_headers, max_line_bytes;
    if (!PyArg_ParseTuple(args, "Snn:split_head", &head_obj, &max_headers, &max_line_bytes))
        return NULL;
    const unsigned char *h = (const unsigned char *)PyBytes_AS_STRING(head_obj);
    Py_ssize_t size = PyBytes_GET_SIZE(head_obj);

    /* The raw lines (split on CRLF, before unfolding): how many, the longest. */
    Py_ssize_t n_lines = 1, longest = 0, line_start = 0;
    for (Py_ssize_t i = 0; i + 1 < size; i++) {
        if (h[i] == '\r' && h[i + 1] == '\n') {
            if (i - line_start > longest)
                longest = i - line_start;
            n_lines++;
            line_start = i + 2;
            i++;
        }
    }
    if (size - line_start > longest)
        longest = size - line_start;
    if (n_lines > max_headers + 1)
        return raise_remote("Too many header fields", 513);
    if (size > max_line_bytes && longest > max_line_bytes)
        return raise_remote("Header line too long", 513);

    PyObject *start = NULL;
    PyObject *lines = PyList_New(0);
    PyObject *keys = PyList_New(0);
    if (lines == NULL || keys == NULL)
        goto fail;
    /* Walk the raw lines, merging each continuation line (leading SP / HTAB, §7.3.1)
     * into the field above: a merged field is the span from its first line's start to
     * its last line's end, CRLFs included. The first field is the start line. */
    Py_ssize_t pos = 0, field_start = 0, field_end = -1;
    for (;;) {
        Py_ssize_t end = pos;
        while (end < size && !(h[end] == '\r' && end + 1 < size && h[end + 1] == '\n'))
            end++;
        if (field_end >= 0 && end > pos && (h[pos] == ' ' || h[pos] == '\t')) {
            field_end = end;
        }
        else {
            if (field_end >= 0) {
                if (start == NULL) {
                    start = PyBytes_FromStringAndSize((const char *)h + field_start,
                                                      field_end - field_start);
                    if (start == NULL)
                        goto fail;
                }
                else if (add_field(h + field_start, field_end - field_start, lines, keys) < 0) {
                    goto fail;
                }
            }
            field_start = pos;
            field_end = end;
        }
        if (end >= size)
            break;
        pos = end + 2;
    }
    if (start == NULL) {
        start = PyBytes_FromStringAndSize((const char *)h + field_start, field_end - field_start);
        if (start == NULL)
            goto fail;
    }
    else if (add_field(h + field_start, field_end - field_start, lines, keys) < 0) {
        goto fail;
    }
    PyObject *result = PyTuple_Pack(3, start, lines, keys);
    Py_DECREF(start);
    Py_DECREF(lines);
    Py_DECREF(keys);
    return result;
fail:
    Py_XDECREF(start);
    Py_XDECREF(lines);
    Py_XDECREF(keys);
    return NULL;
}

/* scan.find_head_end(buf, pos): the end of the first match of \r?\n\r?\n at or after
 * pos (a negative pos counts as 0, as in re), or -1. */
static PyObject *
find_head_end(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos;
    if (!PyArg_ParseTuple(args, "y*n:find_head_end", &view, &pos))
        return NULL;
    const unsigned char *b = view.buf;
    Py_ssize_t size = view.len, found = -1;
    if (pos < 0)
        pos = 0;
    for (Py_ssize_t p = pos; p < size; p++) {
        Py_ssize_t q;
        if (b[p] == '\n')
            q = p + 1;
        else if (b[p] == '\r' && p + 1 < size && b[p + 1] == '\n')
            q = p + 2;
        else
            continue;
        if (q < size && b[q] == '\n') {
            found = q + 1;
            break;
        }
        if (q + 1 < size && b[q] == '\r' && b[q + 1] == '\n') {
            found = q + 2;
            break;
        }
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(found);
}

static int
is_space(unsigned char c)
{
    /* bytes.strip(): ASCII whitespace */
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c';
}

static const char content_length_name[] = "content-length";

/* scan.content_length_of(header): the regex
 *   ^(?:content-length|l)[ \t]*:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)   (IGNORECASE, MULTILINE)
 * matched at each line start from the second line on, the value stripped and checked. */
static PyObject *
content_length_of(PyObject *self, PyObject *args)
{
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*:content_length_of", &view))
        return NULL;
    const unsigned char *b = view.buf;
    Py_ssize_t size = view.len;
    const unsigned char *nl = memchr(b, '\n', (size_t)size);
    Py_ssize_t line = nl == NULL ? 0 : (nl - b) + 1;
    long long value = -1;
    const char *error = NULL;
    while (line <= size) {
        Py_ssize_t p = line, next_from = line;
        /* The name: "content-length" (tried first, as the alternation does) or "l". */
        Py_ssize_t n = (Py_ssize_t)sizeof(content_length_name) - 1;
        int named = 0;
        if (size - p >= n) {
            named = 1;
            for (Py_ssize_t i = 0; i < n; i++) {
                unsigned char c = b[p + i];
                if (c >= 'A' && c <= 'Z')
                    c += 32;
                if (c != (unsigned char)content_length_name[i]) {
                    named = 0;
                    break;
                }
            }
        }
        Py_ssize_t q = p + n;
        int matched = 0;
        if (named) {
            while (q < size && (b[q] == ' ' || b[q] == '\t'))
                q++;
            matched = q < size && b[q] == ':';
        }
        if (!matched && p < size && (b[p] | 0x20) == 'l') {
            q = p + 1;
            while (q < size && (b[q] == ' ' || b[q] == '\t'))
                q++;
            matched = q < size && b[q] == ':';
        }
        if (matched) {
            Py_ssize_t vs = q + 1, ve = vs;
            for (;;) {
                while (ve < size && b[ve] != '\r' && b[ve] != '\n')
                    ve++;
                Py_ssize_t r = ve;
                if (r < size && b[r] == '\r')
                    r++;
                if (r < size && b[r] == '\n' && r + 1 < size && (b[r + 1] == ' ' || b[r + 1] == '\t'))
                    ve = r + 2;
                else
                    break;
            }
            next_from = ve;
            while (vs < ve && is_space(b[vs]))
                vs++;
            while (ve > vs && is_space(b[ve - 1]))
                ve--;
            Py_ssize_t digits = ve - vs;
            int ok = digits > 0 && digits <= 12;
            long long number = 0;
            for (Py_ssize_t i = vs; ok && i < ve; i++) {
                if (b[i] < '0' || b[i] > '9')
                    ok = 0;
                else
                    number = number * 10 + (b[i] - '0');
            }
            if (!ok) {
                error = "Invalid Content-Length";
                break;
            }
            if (value >= 0 && number != value) {
                error = "Conflicting Content-Length";
                break;
            }
            value = number;
        }
        /* The next line start: just past the next LF at or after where we stopped. */
        if (next_from >= size)
            break;
        const unsigned char *lf = memchr(b + next_from, '\n', (size_t)(size - next_from));
        if (lf == NULL)
            break;
        line = (lf - b) + 1;
    }
    PyBuffer_Release(&view);
    if (error != NULL)
        return raise_remote(error, 400);
    if (value < 0)
        return raise_remote("Missing Content-Length", 400);
    return PyLong_FromLongLong(value);
}

static PyMethodDef methods[] = {
    {"split_head", split_head, METH_VARARGS,
     "split_head(head, max_headers, max_line_bytes) -> (start, lines, keys)"},
    {"find_head_end", find_head_end, METH_VARARGS, "find_head_end(buf, pos) -> int"},
    {"content_length_of", content_length_of, METH_VARARGS, "content_length_of(header) -> int"},
    {"via_line_parts", sipline_via_line_parts, METH_VARARGS,
     "via_line_parts(line) -> (transport, host, is_ipv4, port, params) or None"},
    {"sip_uri_parts", sipline_sip_uri_parts, METH_VARARGS,
     "sip_uri_parts(text) -> (scheme, user, host, is_ipv4, port, params) or None"},
    {"parse_value", sipline_parse_value, METH_VARARGS,
     "parse_value(text, what) -> (scheme, params or token68), as auth_params.parse_value"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sipline._speedups",
    "C versions of sipline.core.scan's byte scanners (optional; the Python ones are the "
    "reference).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    init_tables();
    if (init_keys() < 0)
        return NULL;
    return PyModule_Create(&module);
}
