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

        answers: list[tuple[bool, bool]] = []
        done = threading.Barrier(4)
        for _ in range(3):
            engine._pool.submit(0, lambda: (answers.append(copies()), done.wait(timeout=30)))
        done.wait(timeout=30)
        assert answers == [(True, True)] * 3
    finally:
        engine.stop()


def test_the_most_urgent_request_is_tokenized_first():
    from crossrank.worker.engine.tokenizer_pool import TokenizerPool

    pool = TokenizerPool(1)
    pool.start()
    gate, order = threading.Event(), []
    pool.submit(0, lambda: gate.wait(30))  # hold the one thread while work queues
    for name, priority in [("bulk-1", 10), ("bulk-2", 10), ("live-1", 0), ("low", 20), ("live-2", 0)]:
        pool.submit(priority, lambda name=name: order.append(name))
    finished = threading.Event()
    pool.submit(99, finished.set)
    gate.set()
    assert finished.wait(30)
    pool.shutdown()
    assert order == ["live-1", "live-2", "bulk-1", "bulk-2", "low"]
