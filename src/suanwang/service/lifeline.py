"""Child processes that die with their parent: `suanwang serve --workers N` starts API workers and a loop process;
if `serve` itself is killed (even with SIGKILL, which it cannot catch) they must not go on serving the port.

Linux: each child asks the kernel (prctl PR_SET_PDEATHSIG) for SIGTERM when its parent dies, then checks that the
parent it was started by is still its parent (it may have died before the request was made). Elsewhere this is
a no-op. The parent names itself in SUANWANG_PARENT_PID; a process started without it is left alone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "SUANWANG_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def parent_env() -> dict[str, str]:
    """The variable a child needs to find (and die with) this process."""
    return {PARENT_ENV: str(os.getpid())}


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have the kernel send `sig` to this process when the parent named in SUANWANG_PARENT_PID dies; True when
    armed. A parent that is already gone gets the signal sent at once."""
    parent = os.environ.get(PARENT_ENV, "")
    if not parent.isdigit() or int(parent) == os.getpid() or not sys.platform.startswith("linux"):
        return False  # not started by `serve`, or `serve` itself (one worker runs in its own process)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != int(parent):  # the parent died before the request: nobody would signal us
        os.kill(os.getpid(), sig)
    return True
