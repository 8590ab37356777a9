import os

from basicsr.utils.registry import DATASET_REGISTRY

from .dataset_checks import check_max_size
from .errors import DatasetError, DatasetNotFoundError
from .folder_base import ImageFolderDataset
from .image_io import convert_color, list_images, read_image
from .pair_transforms import center_crop, image_to_tensor


@DATASET_REGISTRY.register()
class LRFolderDataset(ImageFolderDataset):
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

    OPTIONS = ImageFolderDataset.OPTIONS | {'dataroot_lq', 'max_size'}

    def __init__(self, opt):
        super().__init__(opt)
        self.max_size = check_max_size(opt, 'LRFolderDataset')
        root = opt.get('dataroot_lq')
        if not root:
            raise DatasetError(f"LRFolderDataset '{opt.get('name')}': option 'dataroot_lq' (folder of LR images) "
                               'is missing')
        if not os.path.isdir(root):
            raise DatasetNotFoundError(f'LRFolderDataset: dataroot_lq folder not found: {os.path.abspath(root)}')
        self.paths = [os.path.join(root, name) for name in list_images(root)]
        if not self.paths:
            raise DatasetError(f'LRFolderDataset: no image files (png, jpg, bmp, tif, webp) in {root}')

    def __getitem__(self, index):
        lq_path = self.paths[index]
        lq = read_image(lq_path)
        if self.max_size is not None:
            lq = center_crop(lq, self.max_size, self.max_size)
        lq = convert_color(lq, self.opt.get('color'))
        return dict(lq=image_to_tensor(lq), lq_path=lq_path)

    def __len__(self):
        return len(self.paths)
