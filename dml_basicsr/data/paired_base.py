"""The part every real paired dataset shares: option checks, pairing by name, read (disk, cache or LMDB),
align, crop, convert, tensorise."""
import os

from basicsr.data.transforms import augment

from .dataset_checks import check_gt_size, is_positive_int, listed
from .errors import DatasetError
from .folder_base import ImageFolderDataset
from .image_cache import cache_limit, check_cache_size, fill_cache
from .image_io import check_image_file, convert_color, raw_to_float, read_raw
from .pair_transforms import pair_to_tensors, random_crop_origin
from .prepared_lmdb import open_prepared, prepared_pairs, read_prepared


def pair_paths(hr, lr, dataset, partner):
    """[(hr_path, lr_path)] of the keys of two {key: path} dicts, sorted by key.

    A file without a partner is a DatasetError '<dataset>: N file(s) without their <partner> partner: ...'
    that lists the HR files first, then the LR ones.
    """
    unpaired = [hr[k] for k in sorted(hr.keys() - lr.keys())] + [lr[k] for k in sorted(lr.keys() - hr.keys())]
    if unpaired:
        raise DatasetError(f'{dataset}: {len(unpaired)} file(s) without their {partner} partner: {listed(unpaired)}')
    return [(hr[k], lr[k]) for k in sorted(hr)]


class PairedImageFolder(ImageFolderDataset):
    """Base of the real HR-LR pair datasets (RealSR, City100, DRealSR).

    A subclass calls ``super().__init__(opt)`` first (the common checks; sets ``self.opt``,
    ``self.is_train`` and ``self.io_backend``), sets ``self.crop_scale`` (the HR/LR size ratio of the
    items) and ``self.lr_ratio`` (that of the files as stored: City100's LR is stored on the HR grid, 1),
    implements :meth:`aligned_size` (and :meth:`resize_lr` if the stored LR is resized), and ends with
    ``self.set_pairs(find)``, ``find()`` listing [(hr_path, lr_path)] on disk (e.g. with :func:`pair_paths`).

    Items are ``dict(gt=(C, H, W), lq=(C, H/s, W/s), gt_path, lq_path)``; training items are random
    aligned crops of ``gt_size``, flipped/rotated only if ``use_hflip``/``use_rot`` say so (default false:
    they would also flip/rotate the real degradation). The crop is cut from the decoded 8/16-bit pixels
    before the float and colour conversion (and the LR resize), which work pixel by pixel (and, for an
    integer resize factor, block by block), so the items are those of converting the whole image first.

    Options (all paired datasets):
        io_backend (dict): {type: disk} (default), or {type: lmdb} with ``dataroot`` a folder of paired
            sub-images made by ``basicsr prepare`` (then the layout options are not used).
        cache (bool): keep the decoded images (uint8/uint16) in memory, decoded once when the dataset is
            built, before BasicSR starts the DataLoader workers, which share them (default false).
        cache_max_gb (number): the cache's bound in GB (10^9 bytes; default 4). Checked from the PNG
            headers before decoding anything, and while decoding.
    """

    IO_BACKENDS = ('disk', 'lmdb')
    OPTIONS = ImageFolderDataset.OPTIONS | {'dataroot', 'gt_size', 'use_hflip', 'use_rot', 'cache', 'cache_max_gb'}

    def __init__(self, opt):
        super().__init__(opt)
        check_gt_size(opt, self.dataset_name)
        self.is_train = opt['phase'] == 'train'
        self.cache_bytes = cache_limit(opt, self.dataset_name)
        self.cache, self.pairs, self._lmdb = {}, [], None

    @classmethod
    def check_options(cls, opt):
        """Options and layout (lists files); with ``cache: true`` its size from the PNG headers. Decodes nothing.
        Returns the number of pairs."""
        dataset = cls(dict(opt, cache=False))
        max_bytes = cache_limit(opt, dataset.dataset_name)
        if max_bytes is not None:
            check_cache_size(dataset.files(), max_bytes, opt, dataset.dataset_name)
        if dataset.io_backend == 'disk':
            dataset.check_pair_sizes()
            if dataset.is_train:
                dataset.check_patches_fit()
        return len(dataset)

    def check_pair_sizes(self):
        """Every pair's LR size against its HR size, from the image headers (files whose header gives no size are
        checked when read): a pair that does not match stops the run before it writes anything, not when it is first
        drawn."""
        for gt_path, lq_path in self.pairs:
            gt_size, lq_size = check_image_file(gt_path), check_image_file(lq_path)
            if gt_size and lq_size:
                self.aligned_size(gt_size, lq_size, gt_path, lq_path)

    def check_patches_fit(self):
        """``gt_size`` a multiple of the crop scale and no larger than any HR image (its size from its header: PNG,
        JPEG, BMP, WebP, TIFF whose directory comes first; others are checked when read): DatasetError naming the
        first that is smaller."""
        size, s = self.opt['gt_size'], self.crop_scale
        where = f"{self.dataset_name} '{self.opt.get('name')}'"
        if not is_positive_int(size) or size % s:
            raise DatasetError(f'{where}: gt_size must be a positive multiple of the scale {s}, got {size!r}')
        for gt_path, _ in self.pairs:
            declared = check_image_file(gt_path)
            if declared is not None and min(declared) < size:
                h, w = declared
                raise DatasetError(f'{where}: gt_size {size} is larger than the HR image {gt_path} ({w}x{h}): use '
                                   f'gt_size <= {min(h, w) // s * s}')

    def set_pairs(self, find_pairs):
        """``self.pairs`` from the prepared folder (io_backend lmdb) or ``find_pairs()``; fill the cache if it is on."""
        if self.io_backend == 'lmdb':
            self.pairs = prepared_pairs(self.opt['dataroot'], self.alignment(), f"{self.dataset_name} "
                                        f"'{self.opt.get('name')}'")
        else:
            self.pairs = find_pairs()
        if self.cache_bytes is not None:
            self.cache = fill_cache(self.files(), read_raw, self.cache_bytes, self.opt, self.dataset_name)

    def files(self):
        """Every HR and LR file (or LMDB name) of the pairs."""
        return [path for pair in self.pairs for path in pair]

    def alignment(self):
        """What a prepared LMDB folder must have been made for to be read by this dataset."""
        return dict(type=self.dataset_name, crop_scale=self.crop_scale, lr_ratio=self.lr_ratio)

    def aligned_size(self, gt_shape, lq_shape, gt_path, lq_path):
        """Check the sizes of a pair; the HR size (H', W') to keep top-left, LR [:H'/lr_ratio, :W'/lr_ratio]."""
        raise NotImplementedError

    def resize_lr(self, lq):
        """The stored LR (float, a multiple of the HR/LR ratio in size) -> the item's LR; here unchanged."""
        return lq

    def read_raw(self, path, client_key):
        """The decoded pixels of a file, uint8/uint16 (H, W, 1 or 3): from the cache, the LMDB or the disk."""
        img = self.cache.get(path)
        if img is not None:
            return img
        if self.io_backend == 'lmdb':
            return read_prepared(self._lmdb_client(), path, client_key)
        return read_raw(path)

    def _lmdb_client(self):
        # An LMDB environment must not cross a fork: each process (DataLoader worker) opens its own.
        if self._lmdb is None or self._lmdb[0] != os.getpid():
            self._lmdb = (os.getpid(), open_prepared(self.opt['dataroot']))
        return self._lmdb[1]

    def aligned_region(self, gt, lq, gt_path, lq_path):
        """Views of the HR (H', W') and stored LR (H'/lr_ratio, W'/lr_ratio) that align LR (i, j) with HR (s*i, s*j)."""
        h, w = self.aligned_size(gt.shape, lq.shape, gt_path, lq_path)
        r = self.lr_ratio
        return gt[:h, :w], lq[:h // r, :w // r]

    def align(self, gt, lq, gt_path, lq_path):
        """The whole aligned pair of two read images (float): :meth:`aligned_region`, then :meth:`resize_lr`."""
        gt, lq = self.aligned_region(gt, lq, gt_path, lq_path)
        return gt, self.resize_lr(lq)

    def train_crop(self, gt, lq, gt_path):
        """Random ``gt_size`` crop of an aligned region (HR and stored LR views); the same draws as
        :func:`~dml_basicsr.data.pair_transforms.paired_random_crop` of the aligned, resized pair."""
        s, r, size = self.crop_scale, self.lr_ratio, self.opt['gt_size']
        top, left = random_crop_origin(gt.shape[0] // s, gt.shape[1] // s, size, s, gt_path)
        y, x = top * s, left * s
        return gt[y:y + size, x:x + size], lq[y // r:(y + size) // r, x // r:(x + size) // r]

    def __getitem__(self, index):
        gt_path, lq_path = self.pairs[index]
        gt, lq = self.aligned_region(self.read_raw(gt_path, 'gt'), self.read_raw(lq_path, 'lq'), gt_path, lq_path)
        if self.is_train:
            gt, lq = self.train_crop(gt, lq, gt_path)
        gt, lq = raw_to_float(gt), self.resize_lr(raw_to_float(lq))
        color = self.opt.get('color')
        gt, lq = convert_color(gt, color), convert_color(lq, color)
        if self.is_train:
            gt, lq = augment([gt, lq], self.opt.get('use_hflip', False), self.opt.get('use_rot', False))
        gt_t, lq_t = pair_to_tensors(gt, lq)
        return dict(gt=gt_t, lq=lq_t, gt_path=gt_path, lq_path=lq_path)

    def __len__(self):
        return len(self.pairs)
