"""Facts of the machine a figure was measured on, a free loopback port, and whether a port is taken (benchmarks,
tests, and a stack's start). Standard library only, so both venvs can import it."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from pathlib import Path


def cpu_name() -> str:
    """The CPU, its cores and whether it has AVX-512: named with every absolute figure (machines differ)."""
    cpuinfo = Path("/proc/cpuinfo")
    info = cpuinfo.read_text() if cpuinfo.exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    avx512 = "AVX-512" if "avx512f" in info else "no AVX-512"
    return f"{model or platform.processor() or 'unknown CPU'}, {os.cpu_count()} cores, {avx512}"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether something already accepts connections at ``host``:``port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False
