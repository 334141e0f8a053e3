/* Shared by the C files of sipline._speedups. */
#ifndef SIPLINE_SPEEDUPS_H
#define SIPLINE_SPEEDUPS_H

#include <Python.h>

/* token characters (RFC 3261 §25.1), filled at module init */
extern unsigned char sipline_is_token[256];

/* Raises sipline.core.errors.RemoteProtocolError(reason, status); steals `reason`; NULL. */
PyObject *sipline_raise_remote(PyObject *reason, int status);

/* scan.via_line_parts(line) and scan.sip_uri_parts(text) (_speedups_sip.c) */
PyObject *sipline_via_line_parts(PyObject *self, PyObject *args);
PyObject *sipline_sip_uri_parts(PyObject *self, PyObject *args);

/* auth_params.parse_value(text, what) (_speedups_auth.c) */
PyObject *sipline_parse_value(PyObject *self, PyObject *args);

#endif
