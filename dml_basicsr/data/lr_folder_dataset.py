import os

import torch
from basicsr.utils import img2tensor
from basicsr.utils.registry import DATASET_REGISTRY

from .dataset_checks import check_disk_backend
from .errors import DatasetError, DatasetNotFoundError
from .image_io import convert_color, list_images, read_image


def check_max_size(opt, dataset):
    """``max_size``: null (no crop) or a positive integer; returns it."""
    max_size = opt.get('max_size')
    if max_size is None:
        return None
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise DatasetError(f"{dataset} '{opt.get('name')}': max_size must be a positive integer or null, "
                           f'got {max_size!r}')
    return max_size


def check_color(opt, dataset):
    """``color``: 'y', 'rgb' or null."""
    if opt.get('color') not in (None, 'rgb', 'y'):
        raise DatasetError(f"{dataset} '{opt.get('name')}': color must be 'y', 'rgb' or null, got {opt['color']!r}")


def center_crop(img, height, width):
    """The centre (at most) ``height`` x ``width`` of an (H, W, C) array."""
    h, w = min(height, img.shape[0]), min(width, img.shape[1])
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[top:top + h, left:left + w]


@DATASET_REGISTRY.register()
class LRFolderDataset(torch.utils.data.Dataset):
    """A folder of real low-resolution photos without ground truth (e.g. RealSRSet).

    For qualitative SR of real LR input and for no-reference runs: every image file directly in
    ``dataroot_lq`` (sorted by name) is one sample. Gray, RGBA and 16-bit files are read as 3-channel
    float images (see :func:`dml_basicsr.data.image_io.read_image`).

    Returns ``dict(lq=tensor (C, H, W), lq_path=str)``; there is no ``gt``, so set no metrics
    that need one in ``val``.

    Options:
        dataroot_lq (str): the folder of LR images.
        color (str): 'y' for the Y channel, or null for RGB (default).
        max_size (int): centre-crop each image to at most max_size x max_size (default: no crop).
        io_backend (dict): only {type: disk}.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        check_disk_backend(opt, 'LRFolderDataset')
        self.max_size = check_max_size(opt, 'LRFolderDataset')
        check_color(opt, 'LRFolderDataset')
        root = opt.get('dataroot_lq')
        if not root:
            raise DatasetError(f"LRFolderDataset '{opt.get('name')}': option 'dataroot_lq' (folder of LR images) "
                               'is missing')
        if not os.path.isdir(root):
            raise DatasetNotFoundError(f'LRFolderDataset: dataroot_lq folder not found: {os.path.abspath(root)}')
        self.paths = [os.path.join(root, name) for name in list_images(root)]
        if not self.paths:
            raise DatasetError(f'LRFolderDataset: no image files (png, jpg, bmp, tif, webp) in {root}')

    @classmethod
    def check_options(cls, opt):
        """Raise DatasetError if the options or the folder are wrong (lists files only)."""
        cls(opt)

    def __getitem__(self, index):
        lq_path = self.paths[index]
        lq = read_image(lq_path)
        if self.max_size is not None:
            lq = center_crop(lq, self.max_size, self.max_size)
        lq = convert_color(lq, self.opt.get('color'))
        return dict(lq=img2tensor(lq, bgr2rgb=lq.shape[2] == 3, float32=True), lq_path=lq_path)

    def __len__(self):
        return len(self.paths)
