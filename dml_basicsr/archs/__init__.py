"""Architectures, registered in BasicSR's ARCH_REGISTRY on import."""
from .dml_arch import DMLNet
from .encoder_decoder import EncoderDecoder

__all__ = ['DMLNet', 'EncoderDecoder']
