"""dml_basicsr's mmengine registries (scope ``dml_basicsr``), children of mmengine's, as MMagic's ``registry.py``.

``dict(type='dml_basicsr.DMLDegrade')`` then builds from mmengine's own ``TRANSFORMS`` (or any child of it), and
``dict(type='DMLDegrade')`` does under ``DefaultScope`` ``dml_basicsr``.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

SCOPE = 'dml_basicsr'
_LOCATIONS = ['dml_basicsr.integrations.mmengine']

# Per-sample pipeline transforms (results dict -> results dict): DMLDegrade.
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope=SCOPE, locations=_LOCATIONS)
# Modules, data preprocessors included: DMLDataPreprocessor.
MODELS = Registry('model', parent=MMENGINE_MODELS, scope=SCOPE, locations=_LOCATIONS)
