import logging
import os

from basicsr.utils import get_root_logger
from basicsr.utils.logger import initialized_logger
from basicsr.utils.registry import DATASET_REGISTRY

from .dataset_checks import check_max_size
from .errors import DatasetError, DatasetNotFoundError
from .folder_base import ImageFolderDataset
from .image_io import check_image_file, convert_color, list_images, read_image
from .pair_transforms import center_crop, image_to_tensor

WHOLE_PHOTOS = 'basicsr upscale -i FOLDER -o OUT --model LABEL processes whole photos'


def basicsr_logger():
    """BasicSR's logger ('basicsr'). get_root_logger() only once BasicSR has set it up: called before, it would set
    it up without the run's log file, which BasicSR's own later call would then not add."""
    return get_root_logger() if 'basicsr' in initialized_logger else logging.getLogger('basicsr')


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
        max_size (int): centre-crop each image to at most max_size x max_size (default: no crop). The crops are
            logged through BasicSR's logger: once when the dataset is built, how many of the photos are cropped
            (sizes from the image headers), and at read time each cropped photo whose header gives no size.
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
        self.size_unknown = set()  # indices whose header gives no size: their crop is logged when read
        if self.max_size is not None:
            self._log_crops()

    def _crop_message(self, what, note=''):
        m = self.max_size
        return (f"LRFolderDataset '{self.opt.get('name')}': max_size {m}: {what} centre-cropped to at most {m}x{m}"
                f'{note}; the outputs show these crops; {WHOLE_PHOTOS}')

    def _log_crops(self):
        """One line: how many photos max_size crops, from their headers (decodes nothing)."""
        cropped = 0
        for index, path in enumerate(self.paths):
            try:
                size = check_image_file(path)
            except DatasetError:  # a broken file: the error comes when it is read
                size = None
            if size is None:
                self.size_unknown.add(index)
            elif max(size) > self.max_size:
                cropped += 1
        note = (f' (and any of {len(self.size_unknown)} more whose header gives no size: each logged when read)'
                if self.size_unknown else '')
        basicsr_logger().info(self._crop_message(f'{cropped} of {len(self.paths)} photos', note))

    def __getitem__(self, index):
        lq_path = self.paths[index]
        lq = read_image(lq_path)
        if self.max_size is not None:
            h, w = lq.shape[:2]
            if index in self.size_unknown and max(h, w) > self.max_size:
                basicsr_logger().info(self._crop_message(f'{os.path.basename(lq_path)} ({w}x{h})'))
            lq = center_crop(lq, self.max_size, self.max_size)
        lq = convert_color(lq, self.opt.get('color'))
        return dict(lq=image_to_tensor(lq), lq_path=lq_path)

    def __len__(self):
        return len(self.paths)
