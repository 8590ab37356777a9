"""The ``--device`` / ``device=`` value of the commands, checked in one place."""
import torch


def torch_device(name, allow_auto=False):
    """``'cpu'``, ``'cuda'``, ``'cuda:N'`` (and, with ``allow_auto``, ``'auto'``: CUDA when present) -> a
    ``torch.device``; ValueError saying what is wrong with ``name`` (another kind, or CUDA absent)."""
    if allow_auto and name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ('cpu', 'cuda'):
        choices = "'auto', 'cpu' or 'cuda'" if allow_auto else "'cpu' or 'cuda'"
        raise ValueError(f"device must be {choices} (or 'cuda:N'), got {name!r}")
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'device {name!r} requested, but CUDA is not available')
    return device
