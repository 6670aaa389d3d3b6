"""Memory of servers and of the VM: PSS of a process tree, pages handed back to the host.

pid_mem_kib() measures a server's processes (idle sessions); settle_memory() and
take_pages() put both servers' uploads on the same footing on a VM that returns
freed pages to its host (page_reporting).
"""

import os
import time

from .util import KIB, MIB


def pid_mem_kib(pid):
    """PSS + page tables of one process, KiB (0 if it is gone)."""
    pss = pte = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmPTE:"):
                    pte = int(line.split()[1])
                    break
    except OSError:
        return 0
    return pss + pte


PAGE_REPORTING = "/sys/module/page_reporting/parameters/reported_kib"


def returned_mib():
    """Memory the guest has handed back to the host so far (free page reporting), in MiB;
    None where the kernel does not report free pages."""
    try:
        with open(PAGE_REPORTING) as f:
            return int(f.read()) / KIB
    except (OSError, ValueError):
        return None


def returned_since(before):
    """MiB handed back to the host since `before` (a returned_mib() reading), or None."""
    now = returned_mib()
    return None if before is None or now is None else now - before


def take_pages(ctx):
    """Write, then delete, a file the size of the big one beside it: the transfer that starts
    right after reuses these pages instead of taking them from the host one by one."""
    path = os.path.join(ctx.big_dir, "pages.bin")
    chunk = b"\0" * (4 * MIB)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for _ in range(ctx.cfg["big"] // len(chunk) + 1):
                os.write(fd, chunk)
        finally:
            os.close(fd)
    finally:
        if os.path.exists(path):
            os.unlink(path)


def settle_memory(limit=15.0):
    """Wait until the guest has stopped handing freed memory back to its host (the counter
    stays still for a second), so that every STOR and FXP starts from the same state: the
    run then takes pages from the host and frees them (take_pages, or the FXP reference
    program), and the server's transfer right after it reuses them. Without this, whichever
    transfer ran while the kernel was reporting an earlier one's pages took them from the
    host again, a third of the speed, whichever server it was. No-op without free page
    reporting."""
    last = returned_mib()
    if last is None:
        return
    deadline = time.monotonic() + limit
    still = 0
    while still < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = returned_mib()
        still = still + 1 if now == last else 0
        last = now
