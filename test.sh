#!/usr/bin/env bash
# One command that runs the tests on a fresh clone: installs what is missing (./setup.sh --no-demo), then pytest
# with two workers: one runs the tests on the session's shared line, the other the lines of their own (faults,
# scale-out) and whatever else is waiting (tests/conftest.py). Extra arguments go to pytest, e.g.
# ./test.sh -k codecs, or ./test.sh -n 0 for one process.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --no-demo
START=$(date +%s)
set +e
.venv/bin/python -m pytest -n 2 --dist loadgroup --durations=15 "$@"  # the slowest tests listed: the suite's time is watched
status=$?
set -e
echo "test suite took $(( $(date +%s) - START )) s"
exit $status
