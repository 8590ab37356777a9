"""Architectures, registered in BasicSR's ARCH_REGISTRY on import."""
from .direct_arch import DirectNet
from .directkpn_arch import DirectKPN
from .dml_arch import DMLNet
from .dmlrcan_arch import DMLRCAN
from .dsgan_arch import DSGANDegradation, DSGANDiscriminator, DSGANGenerator
from .encoder_decoder import EncoderDecoder
from .kernel_baselines_arch import FixedKernelNet, UniformKernelNet
from .vdsr_arch import VDSR

__all__ = ['DMLNet', 'DMLRCAN', 'DSGANDegradation', 'DSGANDiscriminator', 'DSGANGenerator', 'DirectKPN', 'DirectNet',
           'EncoderDecoder', 'FixedKernelNet', 'UniformKernelNet', 'VDSR']
