"""The job runner: latest wins, stale results dropped, generator jobs stop, failures arrive."""

import threading
import time

import pytest

from app.jobs import JobRunner


def test_result_arrives_on_gui_thread(qtbot):
    seen = []
    runner = JobRunner(lambda r: (r * 2, threading.current_thread().name), "double")
    runner.finished.connect(lambda job: seen.append((job.value, threading.current_thread().name)))
    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.submit(21)
    (value, worker), gui = seen[0]
    assert value == 42
    assert worker.startswith("mlcalc-double")
    assert gui == threading.main_thread().name
    runner.shutdown()


def test_latest_wins_and_stale_results_are_dropped(qtbot):
    gate = threading.Event()
    started = []

    def slow(request):
        started.append(request)
        if request == "first":
            gate.wait(5)
        return request

    runner = JobRunner(slow, "slow")
    delivered = []
    runner.finished.connect(lambda job: delivered.append(job.value))
    runner.submit("first")
    qtbot.waitUntil(lambda: started == ["first"], timeout=5000)
    runner.submit("second")
    runner.submit("third")  # "second" never starts: cancelled while pending
    gate.set()
    qtbot.waitUntil(lambda: bool(delivered), timeout=5000)
    qtbot.wait(100)
    assert delivered == ["third"]
    assert "second" not in started
    runner.shutdown()


def test_generator_job_stops_between_chunks_when_superseded(qtbot):
    chunks = []

    def chunked(request):
        for i in range(1000):
            chunks.append((request, i))
            time.sleep(0.002)
            yield i / 1000
        return request

    runner = JobRunner(chunked, "chunked")
    delivered = []
    runner.finished.connect(lambda job: delivered.append(job.value))
    runner.submit("long")
    qtbot.waitUntil(lambda: len(chunks) > 5, timeout=5000)
    runner.cancel()
    qtbot.wait(100)
    done_long = sum(1 for r, _ in chunks if r == "long")
    assert done_long < 1000
    assert delivered == []
    runner.shutdown()


def test_failure_is_delivered_with_the_exception(qtbot):
    def broken(request):
        raise ValueError(f"bad {request}")

    runner = JobRunner(broken, "broken")
    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.submit("input")
    failure = blocker.args[0]
    assert isinstance(failure.error, ValueError)
    assert failure.message == "bad input"
    runner.shutdown()


def test_shutdown_while_running_returns_promptly(qtbot):
    def forever(request):
        while True:
            time.sleep(0.01)
            yield 0.0

    runner = JobRunner(forever, "forever")
    runner.submit(None)
    qtbot.wait(50)
    t0 = time.perf_counter()
    assert runner.shutdown(timeout=2.0)
    assert time.perf_counter() - t0 < 1.0
    assert runner.submit(1) == 0  # closed runners accept nothing


@pytest.mark.parametrize("n", [50])
def test_many_quick_submissions_deliver_the_last(qtbot, n):
    runner = JobRunner(lambda r: r, "burst")
    delivered = []
    runner.finished.connect(lambda job: delivered.append(job.value))
    for i in range(n):
        runner.submit(i)
    qtbot.waitUntil(lambda: bool(delivered) and delivered[-1] == n - 1, timeout=5000)
    assert all(v == n - 1 for v in delivered)
    runner.shutdown()
