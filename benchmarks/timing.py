"""Timing shared by the benchmark scripts (imported as ``timing``: the scripts run from this folder)."""
import time

import torch


def sync(device):
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def seconds(fn, device):
    """Wall seconds of one call of ``fn``, the device's work included."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start
