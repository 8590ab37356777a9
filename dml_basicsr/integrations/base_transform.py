"""mmcv's ``BaseTransform`` when mmcv (2.x) is installed, else a stand-in with the same interface.

mmengine's ``Compose`` only calls ``transform(results)``; subclassing mmcv's class when it exists keeps
``isinstance(t, mmcv.transforms.BaseTransform)`` true for MMagic/MMCV pipelines.
"""
try:
    from mmcv.transforms import BaseTransform
except ImportError:

    class BaseTransform:
        """A per-sample transform: ``transform(results) -> results`` (or None to drop the sample), also as
        ``__call__``."""

        def __call__(self, results):
            return self.transform(results)

        def transform(self, results):
            raise NotImplementedError

__all__ = ['BaseTransform']
