"""How the `helpline` command reports a failure: one line on stderr, and the exit code."""

from __future__ import annotations

import sys

EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"helpline: {message}", file=sys.stderr)
    return code
