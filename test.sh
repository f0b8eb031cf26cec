#!/usr/bin/env bash
# One command that runs the tests on a fresh clone: installs what is missing (./setup.sh --no-demo), then pytest.
# Extra arguments go to pytest, e.g. ./test.sh -k codecs
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --no-demo
START=$(date +%s)
set +e
.venv/bin/python -m pytest --durations=15 "$@"  # the slowest tests listed: the suite's time is watched
status=$?
set -e
echo "test suite took $(( $(date +%s) - START )) s"
exit $status
