"""Builds sipline's optional C accelerator (everything else is in pyproject.toml).

`optional=True`: without a C compiler or Python's headers the extension is skipped with
a warning and sipline installs as pure Python (`sipline --version` says which).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sipline._speedups",
            [
                "src/sipline/_speedups.c",
                "src/sipline/_speedups_sip.c",
                "src/sipline/_speedups_auth.c",
            ],
            depends=["src/sipline/_speedups.h"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
