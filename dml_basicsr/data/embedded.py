"""Photographs shipped inside the scikit-image wheel: the embedded default data (no download)."""
import numpy as np

from .errors import DatasetError

# Photographs whose files are inside the scikit-image wheel (no pooch download).
EMBEDDED_IMAGES = ('astronaut', 'brick', 'camera', 'chelsea', 'coffee', 'grass', 'gravel', 'hubble_deep_field',
                   'immunohistochemistry', 'rocket')


def check_embedded(names, context, hint=''):
    """DatasetError '<context>: unknown images [...]; choose from ...<hint>' if a name is not embedded."""
    unknown = [n for n in names if n not in EMBEDDED_IMAGES]
    if unknown:
        raise DatasetError(f'{context}: unknown images {unknown}; choose from {", ".join(EMBEDDED_IMAGES)}{hint}')


def load_embedded(name):
    """A scikit-image data image as float32 BGR (H, W, 3) in [0, 1] (gray is replicated)."""
    if name not in EMBEDDED_IMAGES:
        raise DatasetError(f'unknown embedded image {name!r}; choose from {", ".join(EMBEDDED_IMAGES)}')
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, ::-1]).astype(np.float32) / 255.
