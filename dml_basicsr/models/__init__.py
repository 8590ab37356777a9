"""Models, registered in BasicSR's MODEL_REGISTRY on import."""
from .dml_model import DMLModel
from .dml_online_sr_model import DMLOnlineSRModel

__all__ = ['DMLModel', 'DMLOnlineSRModel']
