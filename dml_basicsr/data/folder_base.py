"""The part every dataset read from image folders shares: the common option checks and ``check_options``."""
import torch

from .dataset_checks import check_color, check_io_backend


class ImageFolderDataset(torch.utils.data.Dataset):
    """Base of the datasets read from folders of image files (the paired ones, SR-RGB, LR folder).

    The constructor checks the options and lists the files but decodes no image, so constructing a
    dataset is its cheap :meth:`check_options` (the paired datasets with ``cache: true`` decode when built;
    their own :meth:`check_options` does not). This one sets ``self.opt`` and ``self.io_backend`` and
    checks the options they all have, ``io_backend`` (one of ``IO_BACKENDS``) and ``color``; the errors
    name the dataset class.
    """

    IO_BACKENDS = ('disk',)
    # Its option keys beside BasicSR's (dataset_checks.BASICSR_DATASET_KEYS); `basicsr train` refuses others.
    OPTIONS = frozenset({'io_backend', 'color'})

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.io_backend = check_io_backend(opt, self.dataset_name, self.IO_BACKENDS)
        check_color(opt, self.dataset_name)

    @property
    def dataset_name(self):
        """The class name, e.g. 'RealSRDataset', for error messages."""
        return type(self).__name__

    @classmethod
    def check_options(cls, opt):
        """Raise DatasetError if the options or the folder layout are wrong (lists files only); the number of
        items the dataset will have."""
        return len(cls(opt))
