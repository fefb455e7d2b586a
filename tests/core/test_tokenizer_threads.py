"""Every tokenizer thread exists, with its own tokenizer copy, before a worker says it is ready."""

import threading

from support.workers import worker_settings

from crossrank.worker.engine import Engine


def test_every_tokenizer_thread_has_its_copy_before_ready(tiny_cross_encoder, tiny_bi_encoder):
    engine = Engine(worker_settings(tiny_cross_encoder, tiny_bi_encoder, tokenizer_workers=3))
    engine.load()
    try:
        assert engine.ready
        assert len(engine._pool._threads) == 3  # this engine's pool (other tests' engines may linger)
        # Hold all three threads at once, so each answers for itself.
        barrier = threading.Barrier(3)

        def copies() -> tuple[bool, bool]:
            barrier.wait(timeout=30)
            return (getattr(engine.pair_tokenizer._local, "rust", None) is not None,
                    getattr(engine.embedder.pair_tokenizer._local, "rust", None) is not None)

        assert [f.result(30) for f in [engine._pool.submit(copies) for _ in range(3)]] == [(True, True)] * 3
    finally:
        engine.stop()
