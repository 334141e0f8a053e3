"""`python -m benchmarks`: every server workload, sipline beside its peers (see suite.py)."""

import sys

from benchmarks.suite import main

sys.exit(main())
