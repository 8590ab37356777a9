"""dml_basicsr: Degradation Model Learning (DML, ACCV 2020) as a BasicSR plugin.

Importing this package registers every architecture, dataset and model in BasicSR's registries, and the
``torchvision`` alias without which basicsr 1.4.2 cannot be imported (:mod:`.compat`); it changes nothing else of
BasicSR.
"""
from . import compat

compat.install_functional_tensor_alias()

from . import archs, data, metrics, models  # noqa: E402  (basicsr imports need the alias first)
from .archs import DMLNet  # noqa: E402
from .degradation import DMLDegradation  # noqa: E402
from .ops import apply_basis_kernels  # noqa: E402

__version__ = '0.1.0'
__all__ = ['DMLDegradation', 'DMLNet', 'apply_basis_kernels', 'archs', 'data', 'models', '__version__']
