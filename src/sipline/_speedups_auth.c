/* sipline._speedups: C twin of auth_params.parse_value, the auth-param scanner of the
 * authentication headers (RFC 3261 §25.1, RFC 7235 §2.1). The Python function is the
 * reference: the same (scheme, params or token68), or RemoteProtocolError with the same
 * reason, for every str or bytes value (tests/core/test_speedups.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_speedups.h"

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
    return sipline_raise_remote(reason, 400);
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
    return c < 128 && sipline_is_token[c];
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
            return sipline_raise_remote(PyUnicode_FromFormat("%U is not valid UTF-8", what), 400);
        }
    }
    else if (PyUnicode_Check(value)) {
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(value) < 0)
            return NULL;
#endif
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
PyObject *
sipline_parse_value(PyObject *self, PyObject *args)
{
    PyObject *value, *what;
    if (!PyArg_ParseTuple(args, "OU:parse_value", &value, &what))
        return NULL;
    PyObject *text = to_text(value, what);
    if (text == NULL)
        return NULL;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) { /* a legacy str: give it its canonical form */
        Py_DECREF(text);
        return NULL;
    }
#endif
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

