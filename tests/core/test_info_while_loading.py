"""A worker still loading says so in Info (model, device, seconds so far), and `crossrank info` fails
on it, or waits for it with --wait."""

from __future__ import annotations

import subprocess

from support.workers import crossrank_command, worker_settings

from crossrank.client import CrossrankClient
from crossrank.worker.server import create_server


def test_info_while_loading_then_ready(tiny_cross_encoder):
    server = create_server(worker_settings(tiny_cross_encoder), load=False)
    try:
        with CrossrankClient(server.address, timeout=30) as client:
            loading = client.info()
        assert loading.state == "loading" and loading.model == server.settings.model
        assert loading.device == "cpu" and loading.loading_seconds > 0

        refused = subprocess.run(crossrank_command("info", "--target", server.address), capture_output=True,
                                 text=True, timeout=60)
        assert refused.returncode != 0
        assert f"still loading {server.settings.model} on cpu" in refused.stderr and "--wait" in refused.stderr

        waiting = subprocess.Popen(crossrank_command("info", "--wait", "--json", "--target", server.address),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert server.wait_ready(120)
        out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, err
        assert '"state": "ready"' in out
    finally:
        server.stop(0)
