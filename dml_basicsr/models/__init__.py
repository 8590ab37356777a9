"""Models, registered in BasicSR's MODEL_REGISTRY on import."""
from .dml_model import DMLModel
from .dsgan_model import DSGANModel
from .online_synthesis_sr_model import DMLOnlineSRModel, OnlineSynthesisSRModel

__all__ = ['DMLModel', 'DSGANModel', 'OnlineSynthesisSRModel', 'DMLOnlineSRModel']
