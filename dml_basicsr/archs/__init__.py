"""Architectures, registered in BasicSR's ARCH_REGISTRY on import."""
from .dml_arch import DMLNet
from .encoder_decoder import EncoderDecoder
from .vdsr_arch import VDSR
from .dmlrcan_arch import DMLRCAN

__all__ = ['DMLNet', 'EncoderDecoder', 'VDSR', 'DMLRCAN']
