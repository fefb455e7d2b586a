"""The worker's threads carry their role down to the OS, where `top -H` and /proc read it."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from crossrank.worker.thread_names import NamedThread, os_name

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _os_name_of(native_id: int) -> str:
    return Path(f"/proc/self/task/{native_id}/comm").read_text().strip()


def test_a_named_thread_is_named_for_the_os_by_its_end():
    seen: dict[str, str] = {}

    def read() -> None:
        seen["name"] = _os_name_of(threading.get_native_id())

    thread = NamedThread(target=read, name="crossrank-minilm-l6-forward-1")
    thread.start()
    thread.join(10)
    assert seen["name"] == "ilm-l6-forward-1"[-15:] == os_name(thread.name)


def test_a_plain_thread_keeps_the_process_name():
    seen: dict[str, str] = {}
    thread = threading.Thread(target=lambda: seen.setdefault("name", _os_name_of(threading.get_native_id())),
                              name="unnamed-for-the-os")
    thread.start()
    thread.join(10)
    assert seen["name"] != "unnamed-for-the-os"  # what NamedThread is for


def test_a_served_worker_shows_each_thread_role(worker):
    by_os = {thread.name: _os_name_of(thread.native_id) for thread in threading.enumerate()
             if isinstance(thread, NamedThread) and thread.native_id is not None and thread.is_alive()}
    assert by_os == {name: os_name(name) for name in by_os}
    shown = set(by_os.values())
    for role in ("-schedule", "-forward", "-post", "tokenize-0", "grpc-aio"):
        assert any(role in name for name in shown), (role, sorted(shown))
