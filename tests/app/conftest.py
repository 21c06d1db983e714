"""App-test fixtures: pyqtgraph set up like the app, no worker thread outlives a test,
every widget a test made is deleted while the application still exists, and the LSH code
loading held on request."""

import gc
import threading

import pytest
from PySide6.QtCore import QCoreApplication, QEvent

from app import jobs, style
from engine import lsh


@pytest.fixture(autouse=True, scope="session")
def _lsh_code_loaded():
    # As the app does on a worker at start-up (the LSH panel starts it); panels built
    # afterwards draw at once. tests/app/test_lsh_panel.py covers the wait itself.
    lsh.warm_up()


@pytest.fixture(autouse=True)
def _app_style(qapp):
    style.configure_pyqtgraph()
    yield


@pytest.fixture(autouse=True)
def _no_leftover_workers(qapp):
    yield
    assert jobs.shutdown_all(timeout=5.0), "a worker thread did not stop"
    assert not jobs.live_worker_threads(), "a test left a worker thread running"


@pytest.fixture(autouse=True)
def _delete_widgets_now(qapp, qtbot):
    # pytest-qt closes the test's widgets in its teardown hook, before fixtures finish;
    # delete them and their GL windows now, not at interpreter exit (a GL window that
    # outlives the QApplication crashes the process after the last test).
    yield
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    qapp.processEvents()
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def held_lsh_warm_up(monkeypatch):
    """The LSH store's code loading as on the first start after an installation, held until
    the test sets the returned event (or the test ends): LSH panels built meanwhile see it
    still loading."""
    from app.panels import lsh as lsh_panel

    warm, release = threading.Event(), threading.Event()
    monkeypatch.setattr(lsh, "is_warm", warm.is_set)

    def held_warm_up(_request):
        release.wait(10)
        yield 1.0
        warm.set()

    monkeypatch.setattr(lsh_panel, "_warm_engine", held_warm_up)
    yield release
    release.set()  # a test that failed early leaves no worker waiting
