"""Helpers the tests share: `from support.workers import serving_worker`. `tests/` is on sys.path
(pyproject's `pythonpath`), so no test edits sys.path to find them."""
