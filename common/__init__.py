"""Torch-free helpers every side imports: the settings model (`settings`), reaching a worker
(`net`: default address, free port, health probe) and JSON log lines (`logs`).

Worker, client and pipeline may all import this package; it imports nothing else of ours, so
the light SDK keeps it without torch.
"""
