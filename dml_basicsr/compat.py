"""The one change ``import dml_basicsr`` makes outside this package: basicsr 1.4.2 must be importable.

``basicsr.data.degradations`` imports ``rgb_to_grayscale`` from ``torchvision.transforms.functional_tensor``,
removed in torchvision 0.17: without it ``import basicsr`` fails. A tiny alias module is registered, only when the
real one is missing. Nothing else of BasicSR is changed on import; what our ``basicsr train``/``test`` command
changes for its own run is in :mod:`dml_basicsr.commands.basicsr_scope`.
"""
import importlib
import sys
import types

FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'


def install_functional_tensor_alias():
    """Register the alias module (idempotent; nothing when torchvision still has the real one)."""
    try:
        importlib.import_module(FUNCTIONAL_TENSOR)
        return
    except ImportError:
        pass
    from torchvision.transforms import functional

    alias = types.ModuleType(FUNCTIONAL_TENSOR)
    alias.rgb_to_grayscale = functional.rgb_to_grayscale
    alias.__doc__ = 'Alias installed by dml_basicsr.compat for basicsr 1.4.2 (removed in torchvision 0.17).'
    sys.modules[FUNCTIONAL_TENSOR] = alias
