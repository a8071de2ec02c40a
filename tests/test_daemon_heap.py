"""The daemon keeps the heap its batches reuse (wgedge.router.daemon.keep_heap): without it,
glibc gave the top of the heap back after each batch and the next batch faulted it in again."""

import ast
import inspect
import subprocess
import sys
import textwrap

from tests.netns import ROOT
from wgedge.router import daemon

# A fresh interpreter without site (whose imports can raise glibc's thresholds by chance, as
# they did on the x86 host but not in the ARM guest): one batch's worth of 64 KiB receive
# buffers, allocated and freed 20 times, page faults counted before and after keep_heap().
PROBE = textwrap.dedent("""
    import resource, sys
    sys.path.insert(0, %r)
    from wgedge.router.daemon import keep_heap

    def batch():
        held = [b"y" * 65535 for _ in range(12)]  # recvmsg(65535) buffers of a batch
        return len(held)

    def faults():
        batch()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            batch()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    first = faults()
    keep_heap()
    print(first, faults())
""") % ROOT


def test_batches_stop_faulting_once_the_heap_is_kept():
    out = subprocess.run([sys.executable, "-S", "-I", "-c", PROBE], capture_output=True,
                         text=True, check=True).stdout
    before, after = (int(n) for n in out.split())
    # Before: each batch's 768 kB came back as fresh pages (about 160 faults a batch here).
    assert before >= 20 * 16, out
    assert after <= 20, out


def test_the_daemon_keeps_its_heap_before_it_serves():
    tree = ast.parse(textwrap.dedent(inspect.getsource(daemon._serve)))
    calls = [n.func.id for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert "keep_heap" in calls
