"""Image reading that handles the odd files real folders contain, with errors that name the file."""
import os

import cv2
import numpy as np
from basicsr.utils import bgr2ycbcr

from .errors import DatasetError, DatasetNotFoundError

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def is_image_file(name):
    return name.lower().endswith(IMG_EXTENSIONS)


def decode_raw(buffer, name):
    """Decode encoded image bytes to the stored pixels: uint8 or uint16 BGR (H, W, 3), or gray (H, W, 1).

    An alpha channel is dropped (the colour is kept as stored). ``name`` is used in error messages.
    This is what the decoded-image cache keeps; :func:`raw_to_float` makes the float image of it.
    """
    img = cv2.imdecode(np.frombuffer(buffer, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetError(f'{name}: cannot decode image (not an image file, or corrupt)')
    if img.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f'{name}: unsupported pixel type {img.dtype} (expected 8- or 16-bit)')
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels == 4:
        img = np.ascontiguousarray(img[:, :, :3])
    elif channels not in (1, 3):
        raise DatasetError(f'{name}: unsupported number of channels {channels} (expected 1, 3 or 4)')
    return img


def raw_to_float(img):
    """uint8/uint16 (H, W, 1 or 3) -> float32 BGR (H, W, 3) in [0, 1]; gray is replicated to 3 channels.

    Works on any crop (view) of a decoded image: the values are those of the whole image's pixels.
    """
    img = img.astype(np.float32) / (255. if img.dtype == np.uint8 else 65535.)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img)


def decode_image(buffer, name):
    """Decode encoded image bytes to float32 BGR (H, W, 3) in [0, 1].

    Gray images are replicated to 3 channels; an alpha channel is dropped (the colour is kept
    as stored); 16-bit images are scaled by 65535. ``name`` is used in error messages.
    """
    return raw_to_float(decode_raw(buffer, name))


def read_raw(path):
    """Read an image file as its stored pixels, uint8/uint16 (H, W, 1 or 3); see :func:`decode_raw`."""
    try:
        with open(path, 'rb') as f:
            buffer = f.read()
    except OSError as e:
        raise DatasetNotFoundError(f'{path}: cannot read image ({e.strerror})') from e
    return decode_raw(buffer, path)


def read_image(path):
    """Read an image file as float32 BGR (H, W, 3) in [0, 1]; see :func:`decode_image`."""
    return raw_to_float(read_raw(path))


def convert_color(img, color):
    """``color='y'``: BasicSR's Y channel, (H, W, 1); ``None``/``'rgb'``: unchanged BGR."""
    if color == 'y':
        return bgr2ycbcr(img, y_only=True)[..., None]
    if color in (None, 'rgb'):
        return img
    raise DatasetError(f"color must be 'y', 'rgb' or null, got {color!r}")


def list_images(folder):
    """Sorted image file names (not paths) directly inside ``folder``."""
    if not os.path.isdir(folder):
        raise DatasetNotFoundError(f'{folder}: folder not found')
    return sorted(f for f in os.listdir(folder) if is_image_file(f))


def index_images(folder, pattern, key_of, dataset, what='the same image'):
    """{key: path} of the images directly in ``folder`` whose names match the regex ``pattern``.

    ``key_of(match)`` gives a file's key, or None to skip the file. Two files with the same key are a
    DatasetError '<dataset>: two files for <what> in <folder>: <a> and <b>'; ``what`` may name the key
    as ``{key}``, e.g. 'shot {key}'.
    """
    paths = {}
    for name in list_images(folder):
        match = pattern.match(name)
        key = None if match is None else key_of(match)
        if key is None:
            continue
        if key in paths:
            raise DatasetError(f'{dataset}: two files for {what.format(key=key)} in {folder}: '
                               f'{os.path.basename(paths[key])} and {name}')
        paths[key] = os.path.join(folder, name)
    return paths
