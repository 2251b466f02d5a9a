"""Threads fitted to the free cores: the rule, and the measurement of other processes' load."""

import subprocess
import sys

import pytest

from genrec.threads import others_busy_cores, threads_for


def test_threads_follow_the_free_cores_within_the_ceiling():
    assert threads_for(cores=2, others=0.0, ceiling=2) == 2
    assert threads_for(cores=2, others=1.0, ceiling=2) == 1  # beside one busy process: one thread
    assert threads_for(cores=2, others=2.0, ceiling=2) == 1  # never fewer than one
    assert threads_for(cores=16, others=3.2, ceiling=8) == 8  # never more than the process started with
    assert threads_for(cores=16, others=10.4, ceiling=8) == 6


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the load is read from /proc/stat")
def test_a_busy_process_is_counted_and_this_one_is_not():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        others_busy_cores(0.2)  # start an interval
        others = others_busy_cores(1.0)
        # our own spinning is left out: this process is idle here, the child keeps one core busy
        assert others is not None and others >= 0.6
    finally:
        busy.kill()
        busy.wait()
