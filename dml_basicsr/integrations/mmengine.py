"""The mmengine entry point: ``custom_imports = dict(imports=['dml_basicsr.integrations.mmengine'],
allow_failed_imports=False)``.

Importing it registers :class:`DMLDegrade` (``TRANSFORMS``) and :class:`DMLDataPreprocessor` (``MODELS``) in
dml_basicsr's registries (scope ``dml_basicsr``: ``type='dml_basicsr.DMLDegrade'`` from any scope) and, when
MMagic is installed, in MMagic's (``type='DMLDegrade'`` in MMagic configs). MMagic is never required.
"""
from .dml_data_preprocessor import DMLDataPreprocessor
from .dml_degrade_transform import DMLDegrade
from .registry import MODELS, TRANSFORMS


def register_into_mmagic():
    """Register both components in MMagic's ``TRANSFORMS``/``MODELS`` too; False when MMagic is not installed."""
    try:
        from mmagic.registry import MODELS as MMAGIC_MODELS
        from mmagic.registry import TRANSFORMS as MMAGIC_TRANSFORMS
    except ImportError:
        return False
    MMAGIC_TRANSFORMS.register_module(module=DMLDegrade, force=True)  # force: importing twice is no error
    MMAGIC_MODELS.register_module(module=DMLDataPreprocessor, force=True)
    return True


register_into_mmagic()

__all__ = ['DMLDataPreprocessor', 'DMLDegrade', 'MODELS', 'TRANSFORMS', 'register_into_mmagic']
