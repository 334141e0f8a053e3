/* sipline._speedups: C versions of the byte scanners in sipline/core/scan.py.
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

/* sipline.core.errors.RemoteProtocolError, imported on first use (importing it at
 * module load would import sipline.core from inside sipline.accel). */
static PyObject *remote_error = NULL;

/* RemoteProtocolError(reason, status) raised; always NULL. `reason` is a str. */
static PyObject *
raise_remote_obj(PyObject *reason, int status)
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
    return raise_remote_obj(PyUnicode_FromString(reason), status);
}

/* token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")  §25.1 */
static unsigned char is_token[256];

static void
init_tables(void)
{
    const char *extra = "-.!%*_+`'~";
    for (int c = 0; c < 256; c++)
        is_token[c] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    for (const char *p = extra; *p; p++)
        is_token[(unsigned char)*p] = 1;
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
        if (!is_token[name[i]])
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

/* --- auth_params.parse_value: scheme and auth-params of a digest header value ------ */

typedef struct {
    PyObject *text; /* the unfolded value (str) */
    int kind;
    const void *data;
    Py_ssize_t len, pos;
    PyObject *what;
} Scanner;

/* RemoteProtocolError(f"Malformed {what}: {defect}"); steals `defect`. */
static PyObject *
scan_error(Scanner *s, PyObject *defect)
{
    if (defect == NULL)
        return NULL;
    PyObject *reason = PyUnicode_FromFormat("Malformed %U: %U", s->what, defect);
    Py_DECREF(defect);
    return raise_remote_obj(reason, 400);
}

static Py_UCS4
peek(Scanner *s)
{
    return s->pos < s->len ? PyUnicode_READ(s->kind, s->data, s->pos) : 0;
}

static int
skip_ws(Scanner *s)
{
    Py_ssize_t start = s->pos;
    while (s->pos < s->len) {
        Py_UCS4 c = PyUnicode_READ(s->kind, s->data, s->pos);
        if (c != ' ' && c != '\t')
            break;
        s->pos++;
    }
    return s->pos > start;
}

static int
token_char(Py_UCS4 c)
{
    return c < 128 && is_token[c];
}

/* A token at pos (advancing past it), or NULL with the error "expected {what} at offset". */
static PyObject *
scan_token(Scanner *s, PyObject *what)
{
    Py_ssize_t start = s->pos, end = start;
    while (end < s->len && token_char(PyUnicode_READ(s->kind, s->data, end)))
        end++;
    if (end == start)
        return scan_error(s, PyUnicode_FromFormat("expected %U at offset %zd", what, start));
    s->pos = end;
    return PyUnicode_Substring(s->text, start, end);
}

static int
qdtext_char(Py_UCS4 c)
{
    /* qdtext: anything but DQUOTE, backslash and the controls other than HTAB */
    return !(c == '"' || c == '\\' || c <= 0x08 || (c >= 0x0a && c <= 0x1f) || c == 0x7f);
}

static PyObject *
scan_quoted(Scanner *s)
{
    Py_ssize_t pos = s->pos + 1, n = 0;
    Py_UCS4 *out = PyMem_Malloc(sizeof(Py_UCS4) * (size_t)(s->len - s->pos + 1));
    if (out == NULL)
        return PyErr_NoMemory();
    PyObject *result = NULL;
    while (pos < s->len) {
        Py_UCS4 c = PyUnicode_READ(s->kind, s->data, pos);
        if (c == '"') {
            s->pos = pos + 1;
            result = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out, n);
            PyMem_Free(out);
            return result;
        }
        if (c == '\\') {
            Py_UCS4 next = pos + 1 < s->len ? PyUnicode_READ(s->kind, s->data, pos + 1) : 0x80;
            if (pos + 1 >= s->len || next >= 0x80 || next == '\n' || next == '\r') {
                PyMem_Free(out);
                return scan_error(s, PyUnicode_FromFormat("bad quoted-pair at offset %zd", pos));
            }
            out[n++] = next;
            pos += 2;
            continue;
        }
        if (!qdtext_char(c)) {
            PyMem_Free(out);
            return scan_error(
                s, PyUnicode_FromFormat("control character in quoted-string at offset %zd", pos));
        }
        out[n++] = c;
        pos++;
    }
    PyMem_Free(out);
    return scan_error(s, PyUnicode_FromString("unterminated quoted-string"));
}

/* TOKEN68_RE.fullmatch(text[pos:].rstrip(" \t")): [A-Za-z0-9\-._~+/]+=* */
static int
is_token68_rest(Scanner *s)
{
    Py_ssize_t end = s->len;
    while (end > s->pos) {
        Py_UCS4 c = PyUnicode_READ(s->kind, s->data, end - 1);
        if (c != ' ' && c != '\t')
            break;
        end--;
    }
    Py_ssize_t i = s->pos;
    while (i < end) {
        Py_UCS4 c = PyUnicode_READ(s->kind, s->data, i);
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'))
            break;
        i++;
    }
    if (i == s->pos)
        return 0;
    while (i < end && PyUnicode_READ(s->kind, s->data, i) == '=')
        i++;
    return i == end;
}

/* _to_text: bytes decoded as UTF-8 (strictly), then every fold (CRLF before SP / HTAB)
 * removed. A new reference, or NULL with the error set. */
static PyObject *
to_text(PyObject *value, PyObject *what)
{
    PyObject *text;
    if (PyBytes_Check(value)) {
        text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), NULL);
        if (text == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                return NULL;
            PyErr_Clear();
            return raise_remote_obj(PyUnicode_FromFormat("%U is not valid UTF-8", what), 400);
        }
    }
    else if (PyUnicode_Check(value)) {
        text = Py_NewRef(value);
    }
    else {
        PyErr_SetString(PyExc_TypeError, "parse_value() needs str or bytes");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), folds = 0;
    for (Py_ssize_t i = 0; i + 2 < len; i++) {
        if (PyUnicode_READ(kind, data, i) == '\r' && PyUnicode_READ(kind, data, i + 1) == '\n') {
            Py_UCS4 c = PyUnicode_READ(kind, data, i + 2);
            if (c == ' ' || c == '\t')
                folds++;
        }
    }
    if (folds == 0)
        return text;
    Py_UCS4 *out = PyMem_Malloc(sizeof(Py_UCS4) * (size_t)len);
    if (out == NULL) {
        Py_DECREF(text);
        return PyErr_NoMemory();
    }
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '\r' && i + 2 < len && PyUnicode_READ(kind, data, i + 1) == '\n') {
            Py_UCS4 d = PyUnicode_READ(kind, data, i + 2);
            if (d == ' ' || d == '\t') {
                i++; /* drop CR LF, keep the whitespace */
                continue;
            }
        }
        out[n++] = c;
    }
    PyObject *unfolded = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out, n);
    PyMem_Free(out);
    Py_DECREF(text);
    return unfolded;
}

/* auth_params.parse_value(text, what) -> (scheme, params tuple or token68 str) */
static PyObject *
parse_value(PyObject *self, PyObject *args)
{
    PyObject *value, *what;
    if (!PyArg_ParseTuple(args, "OU:parse_value", &value, &what))
        return NULL;
    PyObject *text = to_text(value, what);
    if (text == NULL)
        return NULL;
    Scanner s = {text, PyUnicode_KIND(text), PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text),
                 0, what};
    PyObject *scheme = NULL, *params = NULL, *seen = NULL, *result = NULL, *label = NULL;
    skip_ws(&s);
    label = PyUnicode_FromString("an auth-scheme");
    if (label == NULL)
        goto done;
    scheme = scan_token(&s, label);
    Py_CLEAR(label);
    if (scheme == NULL)
        goto done;
    if (!skip_ws(&s) && s.pos < s.len) {
        scan_error(&s, PyUnicode_FromString("no whitespace after the auth-scheme"));
        goto done;
    }
    if (s.pos >= s.len) {
        result = Py_BuildValue("(O())", scheme);
        goto done;
    }
    if (is_token68_rest(&s)) {
        Py_ssize_t end = s.len;
        while (end > s.pos) {
            Py_UCS4 c = PyUnicode_READ(s.kind, s.data, end - 1);
            if (c != ' ' && c != '\t')
                break;
            end--;
        }
        PyObject *rest = PyUnicode_Substring(text, s.pos, end);
        if (rest != NULL) {
            result = PyTuple_Pack(2, scheme, rest);
            Py_DECREF(rest);
        }
        goto done;
    }
    params = PyList_New(0);
    seen = PySet_New(NULL);
    if (params == NULL || seen == NULL)
        goto done;
    for (;;) {
        label = PyUnicode_FromString("an auth-param name");
        if (label == NULL)
            goto done;
        PyObject *name = scan_token(&s, label);
        Py_CLEAR(label);
        if (name == NULL)
            goto done;
        skip_ws(&s);
        if (peek(&s) != '=') {
            scan_error(&s, PyUnicode_FromFormat("expected '=' after %R", name));
            Py_DECREF(name);
            goto done;
        }
        s.pos++;
        skip_ws(&s);
        PyObject *pvalue;
        if (peek(&s) == '"') {
            pvalue = scan_quoted(&s);
        }
        else {
            label = PyUnicode_FromFormat("a value for %R", name);
            pvalue = label == NULL ? NULL : scan_token(&s, label);
            Py_CLEAR(label);
        }
        if (pvalue == NULL) {
            Py_DECREF(name);
            goto done;
        }
        /* RFC 7235 §2.1: each parameter name occurs only once per challenge. */
        PyObject *lower = PyObject_CallMethod(name, "lower", NULL);
        int dup = lower == NULL ? -1 : PySet_Contains(seen, lower);
        if (dup == 0)
            dup = PySet_Add(seen, lower) < 0 ? -1 : 0;
        Py_XDECREF(lower);
        if (dup != 0) {
            if (dup > 0)
                scan_error(&s, PyUnicode_FromFormat("duplicate parameter %R", name));
            Py_DECREF(name);
            Py_DECREF(pvalue);
            goto done;
        }
        PyObject *pair = PyTuple_Pack(2, name, pvalue);
        Py_DECREF(name);
        Py_DECREF(pvalue);
        if (pair == NULL || PyList_Append(params, pair) < 0) {
            Py_XDECREF(pair);
            goto done;
        }
        Py_DECREF(pair);
        skip_ws(&s);
        if (s.pos >= s.len) {
            PyObject *tuple = PyList_AsTuple(params);
            if (tuple != NULL) {
                result = PyTuple_Pack(2, scheme, tuple);
                Py_DECREF(tuple);
            }
            goto done;
        }
        if (peek(&s) != ',') {
            scan_error(&s, PyUnicode_FromFormat("expected ',' at offset %zd", s.pos));
            goto done;
        }
        s.pos++;
        skip_ws(&s);
    }
done:
    Py_XDECREF(label);
    Py_XDECREF(scheme);
    Py_XDECREF(params);
    Py_XDECREF(seen);
    Py_DECREF(text);
    return result;
}

static PyMethodDef methods[] = {
    {"split_head", split_head, METH_VARARGS,
     "split_head(head, max_headers, max_line_bytes) -> (start, lines, keys)"},
    {"find_head_end", find_head_end, METH_VARARGS, "find_head_end(buf, pos) -> int"},
    {"content_length_of", content_length_of, METH_VARARGS, "content_length_of(header) -> int"},
    {"parse_value", parse_value, METH_VARARGS,
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
