"""dml_basicsr: Degradation Model Learning (DML, ACCV 2020) as a BasicSR plugin.

Importing this package applies the basicsr 1.4.2 compatibility fixes and registers every
architecture, dataset and model in BasicSR's registries.
"""
from . import compat

compat.apply()

from . import archs, data, metrics, models  # noqa: E402  (registration needs compat first)
from .archs import DMLNet  # noqa: E402
from .degradation import DMLDegradation  # noqa: E402
from .ops import apply_basis_kernels  # noqa: E402

__version__ = '0.1.0'
__all__ = ['DMLDegradation', 'DMLNet', 'apply_basis_kernels', 'archs', 'data', 'models', '__version__']
