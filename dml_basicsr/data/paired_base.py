"""The part every real paired dataset shares: read a listed pair, align it, convert, crop, tensorise."""
import torch

from .image_io import convert_color, read_image
from .pair_transforms import pair_to_tensors, train_augment


class PairedImageFolder(torch.utils.data.Dataset):
    """Base of the real HR-LR pair datasets (RealSR, City100, DRealSR).

    A subclass sets ``self.opt``, ``self.is_train``, ``self.pairs`` ([(hr_path, lr_path)]) and
    ``self.crop_scale`` (the HR/LR size ratio after :meth:`align`), and implements :meth:`align`.
    Items are ``dict(gt=(C, H, W), lq=(C, H/s, W/s), gt_path, lq_path)``; training items are
    random aligned crops of ``gt_size``, flipped/rotated only if ``use_hflip``/``use_rot`` say so
    (default false: they would also flip/rotate the real degradation).
    """

    def align(self, gt, lq, gt_path, lq_path):
        """Check the sizes of a read pair and crop/resize it so that LR (i, j) is HR (s*i, s*j)."""
        raise NotImplementedError

    @classmethod
    def check_options(cls, opt):
        """Raise DatasetError if the options or the folder layout are wrong (lists files only)."""
        cls(opt)

    def __getitem__(self, index):
        gt_path, lq_path = self.pairs[index]
        gt, lq = self.align(read_image(gt_path), read_image(lq_path), gt_path, lq_path)
        color = self.opt.get('color')
        gt, lq = convert_color(gt, color), convert_color(lq, color)
        if self.is_train:
            opt = dict(self.opt, use_hflip=self.opt.get('use_hflip', False), use_rot=self.opt.get('use_rot', False))
            gt, lq = train_augment(gt, lq, opt, self.crop_scale, gt_path)
        gt_t, lq_t = pair_to_tensors(gt, lq)
        return dict(gt=gt_t, lq=lq_t, gt_path=gt_path, lq_path=lq_path)

    def __len__(self):
        return len(self.pairs)
