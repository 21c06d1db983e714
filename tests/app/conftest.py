"""App-test fixtures: pyqtgraph set up like the app, and no worker thread outlives a test."""

import pytest

from app import jobs, style


@pytest.fixture(autouse=True)
def _app_style(qapp):
    style.configure_pyqtgraph()
    yield


@pytest.fixture(autouse=True)
def _no_leftover_workers(qapp):
    yield
    assert jobs.shutdown_all(timeout=5.0), "a worker thread did not stop"
    assert not jobs.live_worker_threads(), "a test left a worker thread running"
