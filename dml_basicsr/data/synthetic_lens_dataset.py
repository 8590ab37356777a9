from functools import partial

import numpy as np
import torch
from basicsr.utils.registry import DATASET_REGISTRY

from dml_basicsr.ops import SyntheticLens
from .dataset_checks import check_color
from .embedded import check_embedded, load_embedded
from .errors import DatasetError
from .image_io import convert_color, list_images, read_image
from .pair_transforms import center_crop, pair_to_tensors, train_augment


@DATASET_REGISTRY.register()
class SyntheticLensDataset(torch.utils.data.Dataset):
    """HR photos degraded by a known synthetic lens (:class:`dml_basicsr.ops.SyntheticLens`).

    The embedded default for demos and tests: HR images come from scikit-image's bundled
    photographs (or a folder), LR = lens blur (content-dependent, known per-pixel kernels),
    top-left subsampling by ``scale``, then AWGN. Pairs are made once, at construction.

    Validation items also carry the true kernels at a grid of HR pixels, so
    :class:`~dml_basicsr.models.DMLModel` can log how close the learned kernels are:
    ``kernel_points`` (N, 2) of (y, x) and ``kernel_true`` (N, K, K).

    Options:
        images (list[str]): scikit-image data names (see ``EMBEDDED_IMAGES``); or
        dataroot_gt (str): a folder of HR images instead.
        scale (int): subsampling factor s (set by BasicSR from the top-level ``scale``).
        color (str): 'y' (default) or null for RGB.
        noise_sigma (float): AWGN sigma on the 0-255 scale (default 1).
        kernel_size (int): K of the lens kernels (default 15).
        max_size (int): HR images are centre-cropped to at most this side (default 512).
        gt_size (int): training patch side (train phase).
        use_hflip, use_rot (bool): default false; flips move the top-left sampling grid by
            s - 1 pixels, so the true kernels hold exactly only without them.
        kernel_grid (int): true kernels at kernel_grid x kernel_grid points (val; default 6).
        seed (int): noise seed (default 0).
    """

    DEFAULT_COLOR = 'y'  # without a color option its images are Y
    # Its option keys beside BasicSR's (dataset_checks.BASICSR_DATASET_KEYS); `basicsr train` refuses others.
    OPTIONS = frozenset({'images', 'dataroot_gt', 'color', 'noise_sigma', 'kernel_size', 'max_size', 'gt_size',
                         'use_hflip', 'use_rot', 'kernel_grid', 'seed'})

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.scale = int(opt.get('scale', 1))
        self.is_train = opt['phase'] == 'train'
        self.lens = SyntheticLens(kernel_size=opt.get('kernel_size', 15))
        generator = torch.Generator().manual_seed(opt.get('seed', 0))
        self.items = [self._make_pair(name, load(), generator) for name, load in self.checked_sources(opt)]

    @staticmethod
    def _sources(opt):
        """[(name, loader)] of the HR images, checked without reading them."""
        root = opt.get('dataroot_gt')
        if root:
            return [(f'{root}/{name}', partial(read_image, f'{root}/{name}')) for name in list_images(root)]
        names = opt.get('images', ['coffee'])
        check_embedded(names, f"SyntheticLensDataset '{opt.get('name')}'", ' or set dataroot_gt')
        return [(f'skimage_{name}', partial(load_embedded, name)) for name in names]

    @classmethod
    def checked_sources(cls, opt):
        """The checked image sources; DatasetError if options, names or folder are wrong (reads no image)."""
        check_color(opt, 'SyntheticLensDataset')
        sources = cls._sources(opt)
        if not sources:
            raise DatasetError(f"SyntheticLensDataset '{opt.get('name')}': no images (set 'images' or 'dataroot_gt')")
        return sources

    @classmethod
    def check_options(cls, opt):
        """:meth:`checked_sources` (reads no image); the number of items."""
        return len(cls.checked_sources(opt))

    def _crop_hr(self, img):
        """The centre of ``img``, at most ``max_size`` a side and a multiple of ``scale``."""
        max_size = self.opt.get('max_size', 512)
        h, w = (min(s, max_size) // self.scale * self.scale for s in img.shape[:2])
        return center_crop(img, h, w)

    def _make_pair(self, name, img, generator):
        gt = convert_color(self._crop_hr(img), self.opt.get('color', self.DEFAULT_COLOR))
        gt_t = torch.from_numpy(np.ascontiguousarray(gt.transpose(2, 0, 1))).float()
        lq_t = self.lens.degrade(gt_t[None], self.scale)[0]
        sigma = self.opt.get('noise_sigma', 1.0) / 255.
        lq_t = lq_t + sigma * torch.randn(lq_t.shape, generator=generator)
        return dict(name=name, gt=gt, lq=lq_t.clamp(0, 1).numpy().transpose(1, 2, 0))

    def kernel_points(self, height, width):
        """(N, 2) grid of HR pixels (on the LR sampling grid) away from the border."""
        n = self.opt.get('kernel_grid', 6)
        margin = self.lens.basis.shape[-1]
        ys = np.linspace(margin, height - 1 - margin, n) // self.scale * self.scale
        xs = np.linspace(margin, width - 1 - margin, n) // self.scale * self.scale
        grid = np.stack(np.meshgrid(ys, xs, indexing='ij'), axis=-1).reshape(-1, 2)
        return torch.from_numpy(grid.astype(np.int64))

    def __getitem__(self, index):
        item = self.items[index % len(self.items)]
        gt, lq = item['gt'], item['lq']
        if self.is_train:
            gt, lq = train_augment(gt, lq, self.opt, self.scale, item['name'], flip_default=False)
        gt_t, lq_t = pair_to_tensors(gt, lq)
        out = dict(gt=gt_t, lq=lq_t, gt_path=item['name'], lq_path=item['name'])
        if not self.is_train:
            points = self.kernel_points(*gt_t.shape[-2:])
            out['kernel_points'] = points
            out['kernel_true'] = self.lens.kernels_at(gt_t[None], points)[0]
        return out

    def __len__(self):
        return len(self.items)
