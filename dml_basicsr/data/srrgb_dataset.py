import os
import re

from basicsr.utils.registry import DATASET_REGISTRY

from .dataset_checks import check_max_size, check_range, is_positive_int, listed
from .errors import DatasetError, DatasetNotFoundError
from .folder_base import ImageFolderDataset
from .image_io import convert_color, index_images, read_image
from .pair_transforms import center_crop, pair_to_tensors

SEQUENCE_NAME = re.compile(r'^\d+$')  # 00001 ... 00585
SHOT_NAME = re.compile(r'^(?P<shot>\d+)\.(?i:jpg|jpeg|png|tif|tiff)$')  # 00001.JPG ... 00007.JPG

# SR-RAW's zoom lens: 7 focal lengths per sequence, 00001.JPG the longest (narrowest field of view).
SRRAW_FOCAL_MM = {1: 240, 2: 150, 3: 100, 4: 70, 5: 50, 6: 35, 7: 24}
DEFAULT_LQ_SHOT = 6  # 35 mm, the shot Zhang et al. use as test input
DEFAULT_GT_SHOT = 2  # 150 mm, about x4.3 the magnification of the 35 mm shot


def _positive_int(opt, key, default):
    value = opt.get(key, default)
    if not is_positive_int(value):
        raise DatasetError(f"SRRGBDataset '{opt.get('name')}': {key} must be a positive integer "
                           f'(a shot number, 1 = 00001.JPG), got {value!r}')
    return value


@DATASET_REGISTRY.register()
class SRRGBDataset(ImageFolderDataset):
    """SR-RGB: the JPG images of SR-RAW ("Zoom to Learn, Learn to Zoom", Zhang et al., CVPR 2019).

    Layout: ``<dataroot>/<sequence>/<shot>.JPG``, one folder per scene (``00001/`` ... ``00585/``)
    holding 6-7 shots of it taken with a zoom lens. Shot ``00001.JPG`` has the LONGEST focal length
    (240 mm, narrowest field of view); the focal length decreases as the number grows (150, 100, 70,
    50, 35, 24 mm for 00002 ... 00007; Zhang et al. test on the 35 mm shots, "mostly named 00006").
    Sequences with only 6 shots miss one focal length, so a shot number there may mean another one.

    The LR is the short-focal shot ``lq_shot``; the reference HR is the long-focal shot ``gt_shot``
    of the same scene, which shows the centre of the LR's field of view magnified about
    f(gt_shot) / f(lq_shot) times. The two are NOT aligned (different lens settings, hand-held
    camera moves, different exposure), so this dataset is for visual comparison only. Each sample
    carries ``aligned=False``: OnlineSynthesisSRModel then saves the SR image and computes no metrics.

    With ``max_size`` the LR is centre-cropped to at most max_size x max_size and the reference to
    at most ``scale`` times that size around its centre, so that it roughly covers the same field
    as the SR of the crop (exactly only when the focal ratio equals ``scale``).

    Options:
        dataroot (str): the folder of sequence folders (e.g. SR-RAW/test).
        lq_shot (int): shot number of the LR (default 6: 00006.JPG, 35 mm).
        gt_shot (int): shot number of the reference HR, smaller than lq_shot
            (default 2: 00002.JPG, 150 mm, about x4 of the 35 mm shot).
        sequences (list): sequence numbers to use, e.g. [3, 17, 250] (default: all).
        sequence_range (list[int]): [first, last] sequence numbers to use, inclusive (default: all).
        skip_incomplete (bool): skip sequences that lack lq_shot or gt_shot instead of failing
            (default false).
        color (str): 'y' for the Y channel, or null for RGB (default).
        max_size (int): centre-crop the LR to at most this side (default: whole 24 MP image).
        scale (int): set by BasicSR from the top-level ``scale``; the reference crop is scale times
            the LR crop (default 4).
        io_backend (dict): only {type: disk}.
    """

    OPTIONS = ImageFolderDataset.OPTIONS | {'dataroot', 'lq_shot', 'gt_shot', 'sequences', 'sequence_range',
                                             'skip_incomplete', 'max_size'}

    def __init__(self, opt):
        super().__init__(opt)
        name = f"SRRGBDataset '{opt.get('name')}'"
        if opt.get('phase') == 'train':
            raise DatasetError(f'{name}: SR-RGB pairs are not aligned, so they cannot be used for training; '
                               'use it in a val/test dataset')
        self.max_size = check_max_size(opt, 'SRRGBDataset')
        self.scale = int(opt.get('scale', 4))
        self.lq_shot = _positive_int(opt, 'lq_shot', DEFAULT_LQ_SHOT)
        self.gt_shot = _positive_int(opt, 'gt_shot', DEFAULT_GT_SHOT)
        if self.lq_shot <= self.gt_shot:
            raise DatasetError(
                f'{name}: lq_shot ({self.lq_shot}) must be larger than gt_shot ({self.gt_shot}): SR-RAW numbers '
                'the shots from the longest focal length (00001.JPG, 240 mm) to the shortest, so the LR '
                '(short focal length) has the larger number')
        if not opt.get('dataroot'):
            raise DatasetError(f"{name}: option 'dataroot' (the folder of SR-RAW sequence folders) is missing")
        self.pairs = self._find_pairs(opt['dataroot'])

    def _sequence_folders(self, root):
        """[(number, folder)] of the selected sequences, sorted by number."""
        if not os.path.isdir(root):
            raise DatasetNotFoundError(f'SR-RGB folder not found: {os.path.abspath(root)}. Expected one folder per '
                                       f'sequence, e.g. {root}/00001/00001.JPG ... 00007.JPG')
        found = {}
        for entry in sorted(os.listdir(root)):
            if SEQUENCE_NAME.match(entry) and os.path.isdir(os.path.join(root, entry)):
                if int(entry) in found:
                    raise DatasetError(f'SR-RGB: two folders for sequence {int(entry)} in {root}: '
                                       f'{os.path.basename(found[int(entry)])} and {entry}')
                found[int(entry)] = os.path.join(root, entry)
        if not found:
            raise DatasetError(f'SR-RGB: no sequence folders (00001/, 00002/, ...) in {root}')
        sequences, id_range = self.opt.get('sequences'), self.opt.get('sequence_range')
        if sequences is not None and id_range is not None:
            raise DatasetError('SR-RGB: set either sequences (a list) or sequence_range ([first, last]), not both')
        if sequences is not None:
            try:
                numbers = [int(s) for s in sequences]
            except (TypeError, ValueError):
                raise DatasetError(f'SR-RGB: sequences must be a list of sequence numbers, got {sequences!r}') from None
            if not numbers:
                raise DatasetError('SR-RGB: sequences is an empty list (leave it out to use all sequences)')
            missing = [f'{root}/{n:05d}' for n in numbers if n not in found]
            if missing:
                raise DatasetNotFoundError(f'SR-RGB: sequence folder(s) not found: {listed(missing)}')
            return [(n, found[n]) for n in sorted(set(numbers))]
        if id_range is not None:
            check_range(id_range, 'SR-RGB: sequence_range')
            selected = [(n, found[n]) for n in sorted(found) if id_range[0] <= n <= id_range[1]]
            if not selected:
                raise DatasetError(f'SR-RGB: no sequence folders with numbers in {list(id_range)} in {root}')
            return selected
        return [(n, found[n]) for n in sorted(found)]

    @staticmethod
    def _shots(folder):
        """{shot number: path} of the images in a sequence folder."""
        return index_images(folder, SHOT_NAME, lambda match: int(match['shot']), 'SR-RGB', what='shot {key}')

    def _find_pairs(self, root):
        """[(lq_path, gt_path)] of the selected sequences."""
        pairs, missing = [], []
        for _, folder in self._sequence_folders(root):
            shots = self._shots(folder)
            absent = [os.path.join(folder, f'{s:05d}.JPG') for s in (self.lq_shot, self.gt_shot) if s not in shots]
            if absent:
                missing += absent
                continue
            pairs.append((shots[self.lq_shot], shots[self.gt_shot]))
        if missing and not self.opt.get('skip_incomplete', False):
            raise DatasetNotFoundError(f'SR-RGB: {len(missing)} shot(s) not found: {listed(missing)} '
                                       f'(lq_shot {self.lq_shot}, gt_shot {self.gt_shot}; set skip_incomplete: true '
                                       'to skip such sequences)')
        if not pairs:
            raise DatasetError(f'SR-RGB: no sequence in {root} has both shot {self.lq_shot} and shot {self.gt_shot}')
        return pairs

    def __getitem__(self, index):
        lq_path, gt_path = self.pairs[index]
        lq, gt = read_image(lq_path), read_image(gt_path)
        if self.max_size is not None:
            lq = center_crop(lq, self.max_size, self.max_size)
            gt = center_crop(gt, lq.shape[0] * self.scale, lq.shape[1] * self.scale)
        color = self.opt.get('color')
        gt, lq = convert_color(gt, color), convert_color(lq, color)
        gt_t, lq_t = pair_to_tensors(gt, lq)
        # Every sequence has a 00006.JPG: the sequence makes the saved SR image's name unique.
        name = f'{os.path.basename(os.path.dirname(lq_path))}_{os.path.splitext(os.path.basename(lq_path))[0]}'
        return dict(lq=lq_t, gt=gt_t, lq_path=lq_path, gt_path=gt_path, aligned=False, image_name=name)

    def __len__(self):
        return len(self.pairs)
