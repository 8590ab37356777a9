"""Models, registered in BasicSR's MODEL_REGISTRY on import."""
from .dml_model import DMLModel
from .online_synthesis_sr_model import DMLOnlineSRModel, OnlineSynthesisSRModel

__all__ = ['DMLModel', 'OnlineSynthesisSRModel', 'DMLOnlineSRModel']
