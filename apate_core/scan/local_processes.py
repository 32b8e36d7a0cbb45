"""Stopping one local Ray cluster (a test's or a benchmark's) without touching any other on the machine.

``ray stop --force`` ends every Ray process of the user; these helpers find a cluster's processes by a marker
in their command line (its own temp folder) and their descendants, and kill only those. Linux (/proc) only.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def processes_naming(marker: str) -> list[int]:
    """The processes whose command line holds ``marker``, and their descendants (not this process)."""
    parents: dict[int, int] = {}
    ours: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if marker in cmdline:
            ours.add(int(entry.name))
    while children := {pid for pid, parent in parents.items() if parent in ours} - ours:
        ours |= children
    return sorted(ours - {os.getpid()})


def kill_processes_naming(marker: str, rounds: int = 3) -> None:
    """SIGKILL those processes, a few rounds apart (a dying raylet may still start a worker)."""
    for _ in range(rounds):
        pids = processes_naming(marker)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
