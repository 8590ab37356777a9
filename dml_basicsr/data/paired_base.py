"""The part every real paired dataset shares: option checks, pairing by name, read, align, convert, crop, tensorise."""
from .dataset_checks import check_gt_size, listed
from .errors import DatasetError
from .folder_base import ImageFolderDataset
from .image_io import convert_color, read_image
from .pair_transforms import pair_to_tensors, train_augment


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

    A subclass calls ``super().__init__(opt)`` first (the common checks; sets ``self.opt`` and
    ``self.is_train``), then sets ``self.pairs`` ([(hr_path, lr_path)], e.g. with :func:`pair_paths`)
    and ``self.crop_scale`` (the HR/LR size ratio after :meth:`align`), and implements :meth:`align`.
    Items are ``dict(gt=(C, H, W), lq=(C, H/s, W/s), gt_path, lq_path)``; training items are
    random aligned crops of ``gt_size``, flipped/rotated only if ``use_hflip``/``use_rot`` say so
    (default false: they would also flip/rotate the real degradation).
    """

    def __init__(self, opt):
        super().__init__(opt)
        check_gt_size(opt, self.dataset_name)
        self.is_train = opt['phase'] == 'train'

    def align(self, gt, lq, gt_path, lq_path):
        """Check the sizes of a read pair and crop/resize it so that LR (i, j) is HR (s*i, s*j)."""
        raise NotImplementedError

    def __getitem__(self, index):
        gt_path, lq_path = self.pairs[index]
        gt, lq = self.align(read_image(gt_path), read_image(lq_path), gt_path, lq_path)
        color = self.opt.get('color')
        gt, lq = convert_color(gt, color), convert_color(lq, color)
        if self.is_train:
            gt, lq = train_augment(gt, lq, self.opt, self.crop_scale, gt_path, flip_default=False)
        gt_t, lq_t = pair_to_tensors(gt, lq)
        return dict(gt=gt_t, lq=lq_t, gt_path=gt_path, lq_path=lq_path)

    def __len__(self):
        return len(self.pairs)
