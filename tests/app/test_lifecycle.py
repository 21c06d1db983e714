"""The GUI-thread memory housekeeping: garbage collection on a timer, free memory trimmed
while the workers are idle."""

import gc
import platform
import threading

import pytest

from app import lifecycle
from app.jobs import JobRunner

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")


def test_the_collector_owns_collection_until_stopped(qtbot):
    collector = lifecycle.GuiThreadCollector(interval_ms=20)
    try:
        assert not gc.isenabled()
    finally:
        collector.stop()
        collector.deleteLater()
    assert gc.isenabled()


@glibc
def test_free_memory_is_trimmed_only_while_no_job_runs(qtbot):
    release = threading.Event()
    runner = JobRunner(lambda _request: release.wait(10), "held")
    collector = lifecycle.GuiThreadCollector(interval_ms=1000, trim_ms=20)
    try:
        qtbot.waitUntil(lambda: collector.trims >= 2, timeout=5000)  # idle: it trims
        runner.submit(None)
        qtbot.wait(50)
        busy_from = collector.trims
        qtbot.wait(200)
        assert runner.busy and collector.trims == busy_from  # a job runs: it waits
        with qtbot.waitSignal(runner.finished, timeout=5000):
            release.set()
        qtbot.waitUntil(lambda: collector.trims > busy_from, timeout=5000)
    finally:
        release.set()
        collector.stop()
        collector.deleteLater()
        runner.shutdown()
