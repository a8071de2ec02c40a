"""The daemon's scheduling: its nice value, under the SCHED_BATCH policy.

The kernel's WireGuard does its work in softirq context and in per-CPU kernel workers, so a
busy process on the router slows it little. wgedge does the same work in one thread per
interface; at the default priority a process that spins on the same CPU takes half of that
CPU, and the tunnel's packets wait behind it: single-stream TCP through an arm64 guest fell
to half while one such process ran, where wireguard-go (several threads) kept 92%. At nice
-10 (the default here) the daemon keeps its throughput, and the other processes still get
the CPU whenever it waits. 0 gives the daemon no more than any other process.

The nice value sets the daemon's share of a CPU it has to share. Alone it would also let
each wake-up of the daemon preempt the process that was queueing packets for it, so that it
woke for one or two packets at a time: UDP with 64-byte packets fell from 3500 to 770-2560
packets/s in the guest. SCHED_BATCH keeps the share and leaves out that preemption (sched(7)):
the daemon takes its turn when the running process's slice ends or it waits, and finds a
batch. Measured there, nice -10 with SCHED_BATCH: 3760-4270 packets/s, TCP as fast, 0.90-0.93
of it kept with a spinning process (0.48-0.51 at nice 0).

The value comes from `option nice` in the `config wgedge` section (the watchdog passes it to
each daemon it starts and applies a change on reload) or from WGEDGE_NICE for a daemon
started directly (`wgedge IFNAME`, as wg-quick starts wireguard-go).
"""

import os

ENV = "WGEDGE_NICE"
DEFAULT = -10
LOW, HIGH = -20, 19
BATCH = getattr(os, "SCHED_BATCH", None)  # Linux


def parse(text):
    """`text` ('-10', '0', '5') -> int in LOW..HIGH; ValueError with a message otherwise."""
    body = text[1:] if text[:1] in ("-", "+") else text
    if not body or len(body) > 3 or not all("0" <= ch <= "9" for ch in body):
        raise ValueError("expected a nice value from %d to %d, got %r" % (LOW, HIGH, text))
    value = int(text)
    if not LOW <= value <= HIGH:
        raise ValueError("must be from %d to %d, got %r" % (LOW, HIGH, text))
    return value


def from_env():
    """The nice value WGEDGE_NICE names, DEFAULT when it is unset or empty; ValueError for a
    value that is not one."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return DEFAULT
    try:
        return parse(text)
    except ValueError as exc:
        raise ValueError("%s: %s" % (ENV, exc)) from None


def current(pid=0):
    """The nice value of process `pid` (0: this one)."""
    return os.getpriority(os.PRIO_PROCESS, pid)


def apply(pid, value):
    """Put every thread of process `pid` (0: this one) under SCHED_BATCH at nice value
    `value`. Linux keeps both per thread, so setting the process's alone would miss the
    others. Raises OSError (EACCES without CAP_SYS_NICE for a value below the current one;
    ESRCH once the process is gone). The nice value is set first: it is the part that needs
    a privilege, and the threads of a process share their credentials, so a refusal comes
    at the first thread and leaves the process as it was, under the policy it had."""
    pid = pid or os.getpid()
    try:
        tasks = [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        tasks = [pid]  # no /proc: the process itself, which is all a single thread needs
    for tid in tasks:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, value)
            if BATCH is not None:  # leaving SCHED_OTHER for SCHED_BATCH needs no privilege
                os.sched_setscheduler(tid, BATCH, os.sched_param(0))
        except ProcessLookupError:
            if tid == pid:
                raise  # the process is gone; a thread that ended meanwhile is no error


def change_with(pid, old, new, change):
    """A reload's two changes, all or nothing: process `pid` to nice `new` (from `old`), then
    change(); when change() raises, `pid` gets `old` back and the exception goes on. The
    priority goes first because it is the one that can surely be undone. Nothing is reniced
    when `pid` is None or `old` == `new`."""
    renice = pid is not None and old != new
    if renice:
        apply(pid, new)
    try:
        change()
    except BaseException:
        if renice:
            try:
                apply(pid, old)
            except OSError:
                pass  # the process is gone: its next start reads the old value
        raise
