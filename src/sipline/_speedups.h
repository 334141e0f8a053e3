/* Shared by the C files of sipline._speedups. */
#ifndef SIPLINE_SPEEDUPS_H
#define SIPLINE_SPEEDUPS_H

#include <Python.h>

/* token characters (RFC 3261 §25.1), filled at module init */
extern unsigned char sipline_is_token[256];

/* Raises sipline.core.errors.RemoteProtocolError(reason, status); steals `reason`; NULL. */
PyObject *sipline_raise_remote(PyObject *reason, int status);

/* auth_params.parse_value(text, what) */
PyObject *sipline_parse_value(PyObject *self, PyObject *args);

#endif
