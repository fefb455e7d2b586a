"""While a worker loads its model, `crossrank serve` shows the model, the device and the seconds so far."""

import io
import threading

from rich.console import Console
from support.workers import worker_settings

from crossrank.worker.engine import Engine
from crossrank.worker.loading_status import loading_status


def test_a_spinner_names_model_and_device_then_says_when_it_is_loaded(tiny_cross_encoder):
    engine = Engine(worker_settings(tiny_cross_encoder))
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=60)
    loader = threading.Thread(target=engine.load)
    with loading_status(engine.settings, console) as loading:
        loading.engine = engine
        loader.start()
        loader.join(120)
    engine.stop()
    text = out.getvalue()
    assert "loading …" in text and "tiny-cross-encoder on " in text  # the spinner: the path cut to fit
    assert f"loaded {tiny_cross_encoder} on cpu (fp32) in " in text  # and the line that stays


def test_in_a_log_file_two_plain_lines_are_written(tiny_cross_encoder):
    engine = Engine(worker_settings(tiny_cross_encoder))
    out = io.StringIO()
    with loading_status(engine.settings, Console(file=out, width=80)) as loading:
        loading.engine = engine
        engine.load()
    engine.stop()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"loading {tiny_cross_encoder} on cpu..."
    assert lines[1].startswith(f"loaded {tiny_cross_encoder} on cpu (fp32) in ")
    assert "\x1b" not in out.getvalue()  # no terminal codes in a log
