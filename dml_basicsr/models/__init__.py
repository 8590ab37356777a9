"""Models, registered in BasicSR's MODEL_REGISTRY on import."""
from .dml_model import DMLModel

__all__ = ['DMLModel']
