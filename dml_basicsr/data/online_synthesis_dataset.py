import os
import random
import re

import numpy as np
import torch
from basicsr.data.transforms import augment
from basicsr.utils import FileClient
from basicsr.utils.registry import DATASET_REGISTRY

from .dataset_checks import check_color
from .embedded import check_embedded, load_embedded
from .errors import DatasetError, DatasetNotFoundError
from .image_cache import cache_limit, check_cache_size, fill_cache
from .image_io import convert_color, decode_raw, is_image_file, raw_to_float, read_raw
from .pair_transforms import image_to_tensor
from .prepared_lmdb import lmdb_keys


def _component_regex(part):
    """The regex of one glob path component: ``*`` and ``?`` never cross a ``/``, ``[...]`` (``[!...]``) is a
    character class, as in :mod:`glob`."""
    out, i, n = '', 0, len(part)
    while i < n:
        c = part[i]
        end = -1
        if c == '[':
            j = i + 1 + (part[i + 1:i + 2] == '!')
            j += part[j:j + 1] == ']'
            end = part.find(']', j)
        if c == '*':
            out += '[^/]*'
        elif c == '?':
            out += '[^/]'
        elif end != -1:
            body = part[i + 1:end].replace('\\', '\\\\')
            out += '[' + ('^' + body[1:] if body.startswith('!') else body) + ']'
            i = end
        else:
            out += re.escape(c)
        i += 1
    return out


def glob_regex(pattern):
    """A compiled regex of a relative glob ``pattern`` (``/``-separated, ``**`` any number of folders) matched
    against paths relative to the folder; DatasetError for an absolute pattern or one with ``..``."""
    parts = pattern.replace(os.sep, '/').split('/')
    if pattern.startswith(('/', os.sep)) or '..' in parts or not pattern:
        raise DatasetError(f'OnlineSynthesisDataset: gt_glob {pattern!r} must be a relative pattern inside dataroot_gt '
                           '(no leading /, no ..)')
    regex = ''
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == '**':
            regex += '.*' if last else '(?:[^/]+/)*'
        else:
            regex += _component_regex(part) + ('' if last else '/')
    return re.compile(regex + r'\Z', re.S)


def _walk_once(folder):
    """``os.walk`` of ``folder`` that follows links to folders (a dataset linked in is read) but enters each real
    folder once, so a link loop cannot make it walk without end."""
    def real_folder(path):
        st = os.stat(path)
        return st.st_dev, st.st_ino

    seen = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        if real_folder(root) in seen:  # reached again through a link: neither its files nor its folders
            dirs[:] = []
            continue
        seen.add(real_folder(root))
        dirs[:] = [d for d in dirs if real_folder(os.path.join(root, d)) not in seen]
        yield root, files


def _disk_files(folder, patterns):
    """Image files matching the glob ``patterns`` (one or a list, relative to ``folder``, ``**`` recursive),
    sorted, each once. The folder is walked following links to folders but entering each real folder once (a link
    loop cannot hang it); patterns are relative (no leading /, no ..)."""
    if not os.path.isdir(folder):
        raise DatasetNotFoundError(f'HR folder not found: {os.path.abspath(folder)}')
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    regexes = [glob_regex(p) for p in patterns]
    matches = []
    for root, files in _walk_once(folder):
        rel_root = os.path.relpath(root, folder).replace(os.sep, '/')
        for name in files:
            rel = name if rel_root == '.' else f'{rel_root}/{name}'
            if not name.startswith('.') and any(r.match(rel) for r in regexes):
                matches.append(os.path.join(root, name))
    return sorted(path for path in matches if is_image_file(path) and os.path.isfile(path))


@DATASET_REGISTRY.register()
class OnlineSynthesisDataset(torch.utils.data.Dataset):
    """HR crops for online Syn-DML training, optionally mixed with real pairs (RealSR+Syn-DML).

    The dataset does NOT degrade anything: synthetic items carry ``synthetic=True`` and a zero
    ``lq`` placeholder of the LR patch shape. :class:`~dml_basicsr.models.OnlineSynthesisSRModel`
    replaces those placeholders in ``feed_data`` with ``DMLDegradation(gt)``, batch-wise, on the
    training device. Real items (``synthetic=False``) keep their real LR.

    Options:
        dataroot_gt (str): HR folder; or an LMDB folder with ``io_backend: {type: lmdb}``.
        images (list[str]): scikit-image photos (embedded; with dataroot_gt too, both are used).
        gt_glob (str | list[str]): which files under dataroot_gt are HR images (default '**/*', all images,
            recursively; '*/Train/4/*_HR.png' picks RealSR V3's x4 training HR images; a list takes the
            files that any pattern matches, e.g. City100's 001-030: ['0[0-2][1-9]H.PNG', '0[1-3]0H.PNG']).
        io_backend (dict): {type: disk} (default) or {type: lmdb}.
        gt_size (int): HR patch side, a multiple of the LR crop scale (random crops when training, the
            centre crop of each image, unaugmented, in a val/test set).
        scale (int): SR scale (set by BasicSR).
        lr_grid (str): 'lr' (LR patch gt_size/scale, default) or 'hr' (LR on the HR grid).
        color (str): 'y' or null (RGB).
        use_hflip, use_rot (bool): augment synthetic HR crops (default true; the degradation
            comes after, so this is plain data augmentation).
        real (dict): options of a paired dataset (``type`` and its own keys) for real pairs.
        real_ratio (float): probability that an item is a real pair (default 0.5 with ``real``).
        cache (bool), cache_max_gb (number): keep the decoded HR images in memory (disk only; filled before the
            DataLoader workers fork, shared by them; see ``image_cache.py``).
    """

    # Its option keys beside BasicSR's (dataset_checks.BASICSR_DATASET_KEYS); `basicsr train` refuses others.
    OPTIONS = frozenset({'dataroot_gt', 'images', 'gt_glob', 'io_backend', 'gt_size', 'lr_grid', 'color', 'use_hflip',
                         'use_rot', 'real', 'real_ratio', 'cache', 'cache_max_gb'})
    NESTED_DATASETS = ('real',)  # option sections that are datasets of their own

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        check_color(opt, 'OnlineSynthesisDataset')
        self.gt_size = opt.get('gt_size')
        if not self.gt_size:
            raise DatasetError(f"OnlineSynthesisDataset '{opt.get('name')}': option 'gt_size' is missing")
        self.crop_scale = self.degradation_scale(opt)
        if self.gt_size % self.crop_scale:
            raise DatasetError(f"OnlineSynthesisDataset: gt_size {self.gt_size} is not a multiple of scale "
                               f"{self.crop_scale}")
        self.sources = self._hr_sources(opt)
        self.real, self.real_ratio = self._build_real(opt)
        self.file_client = None
        self.cache = self._fill_cache(opt)

    @staticmethod
    def degradation_scale(opt):
        """The scale of the synthetic LR patches, which the DML model of the ``degradation`` section must have."""
        return int(opt.get('scale', 1)) if opt.get('lr_grid', 'lr') == 'lr' else 1

    @classmethod
    def check_options(cls, opt):
        """The number of items (HR sources, see _hr_sources); checks the cache's size from the PNG headers and
        the real dataset's options too. Decodes nothing."""
        check_color(opt, 'OnlineSynthesisDataset')
        sources = cls._hr_sources(opt)
        max_bytes = cache_limit(opt, 'OnlineSynthesisDataset')
        if max_bytes is not None:
            check_cache_size([source for kind, source in sources if kind == 'file'], max_bytes, opt,
                             'OnlineSynthesisDataset')
        real_opt = cls._real_options(opt)
        if real_opt is not None:
            check = getattr(DATASET_REGISTRY.get(real_opt['type']), 'check_options', None)
            if check is not None:
                check(real_opt)
        return len(sources)

    @classmethod
    def _hr_sources(cls, opt):
        """[(kind, source)]: ('embedded', photo name) for ``images``, ('file', path or LMDB key) for dataroot_gt."""
        embedded = []
        if opt.get('images'):
            check_embedded(opt['images'], 'OnlineSynthesisDataset')
            embedded = [('embedded', name) for name in opt['images']]
        if not opt.get('dataroot_gt'):
            if embedded:
                return embedded
            raise DatasetError(f"OnlineSynthesisDataset '{opt.get('name')}': set 'dataroot_gt' (HR folder) or 'images'")
        return [('file', source) for source in cls._stored_sources(opt)] + embedded

    @staticmethod
    def _stored_sources(opt):
        """The paths (disk) or keys (lmdb) of the HR images under dataroot_gt."""
        backend = (opt.get('io_backend') or {}).get('type', 'disk')
        root = opt['dataroot_gt']
        if backend == 'lmdb':
            sources = lmdb_keys(root)
        elif backend == 'disk':
            sources = _disk_files(root, opt.get('gt_glob', '**/*'))
        else:
            raise DatasetError(f"OnlineSynthesisDataset: io_backend type {backend!r} is not supported (disk or lmdb)")
        if not sources:
            raise DatasetError(f"OnlineSynthesisDataset: no HR images in {root} matching "
                               f"{opt.get('gt_glob', '**/*')!r}")
        return sources

    @staticmethod
    def _real_options(opt):
        """Options of the real paired dataset (inheriting phase, scale, gt_size, color, flips), or None."""
        if not opt.get('real'):
            return None
        real_opt = dict(opt['real'], phase=opt['phase'], gt_size=opt.get('gt_size'))
        real_opt.setdefault('name', f"{opt.get('name')}_real")
        if 'scale' in opt:
            real_opt['scale'] = opt['scale']
        for key in ('color', 'use_hflip', 'use_rot'):
            if key in opt and key not in real_opt:
                real_opt[key] = opt[key]
        if real_opt.get('type') not in DATASET_REGISTRY:
            raise DatasetError(f"OnlineSynthesisDataset: real.type {real_opt.get('type')!r} is not a registered "
                               "dataset")
        return real_opt

    def _build_real(self, opt):
        real_opt = self._real_options(opt)
        if real_opt is None:
            return None, 0.0
        ratio = float(opt.get('real_ratio', 0.5))
        if not 0 <= ratio <= 1:
            raise DatasetError(f'OnlineSynthesisDataset: real_ratio must be in [0, 1], got {ratio}')
        return DATASET_REGISTRY.get(real_opt['type'])(real_opt), ratio

    def _read_hr(self, index):
        """(image, name): the stored pixels (uint8/uint16 (H, W, 1 or 3)) of a file (read with a bound, regular
        files only: :func:`~.image_io.read_raw`) or of an LMDB entry, or an embedded photo (float32 BGR); from the
        cache when it holds them."""
        kind, source = self.sources[index]
        name = f'skimage_{source}' if kind == 'embedded' else source
        if (kind, source) in self.cache:
            return self.cache[kind, source], name
        if kind == 'embedded':
            return load_embedded(source), name
        io_opt = dict(self.opt.get('io_backend') or {'type': 'disk'})
        backend = io_opt.pop('type', 'disk')
        if backend != 'lmdb':
            return read_raw(source), name
        if self.file_client is None:
            io_opt.update(db_paths=self.opt['dataroot_gt'], client_keys=['gt'])  # the dataroot, whatever io_opt says
            self.file_client = FileClient(backend, **io_opt)
        return decode_raw(self.file_client.get(source, 'gt'), source), name

    def _fill_cache(self, opt):
        """{(kind, source): pixels} of every HR image with ``cache: true`` (the files bounded by cache_max_gb; the
        embedded photos are small), else {}."""
        max_bytes = cache_limit(opt, 'OnlineSynthesisDataset')
        if max_bytes is None:
            return {}
        files = [source for kind, source in self.sources if kind == 'file']
        decoded = fill_cache(files, read_raw, max_bytes, opt, 'OnlineSynthesisDataset')
        cache = {('file', path): img for path, img in decoded.items()}
        cache.update(((kind, source), load_embedded(source)) for kind, source in self.sources if kind == 'embedded')
        return cache

    def _synthetic_item(self, index):
        img, path = self._read_hr(index)
        size = self.gt_size
        h, w = img.shape[:2]
        if h < size or w < size:
            raise DatasetError(f'{path}: HR image {h}x{w} is smaller than gt_size {size}')
        is_train = self.opt.get('phase') == 'train'
        top, left = (random.randint(0, h - size), random.randint(0, w - size)) if is_train else \
            ((h - size) // 2, (w - size) // 2)
        gt = img[top:top + size, left:left + size]
        gt = gt if gt.dtype == np.float32 else raw_to_float(gt)
        if is_train:
            gt = augment(gt, self.opt.get('use_hflip', True), self.opt.get('use_rot', True))
        gt = convert_color(gt, self.opt.get('color'))
        gt_t = image_to_tensor(gt)
        lq_size = size // self.crop_scale
        lq_t = torch.zeros(gt_t.shape[0], lq_size, lq_size)
        item = dict(gt=gt_t, lq=lq_t, synthetic=True, gt_path=path, lq_path='')
        if not is_train:  # (training batches may mix in real items, which have no image_name)
            item['image_name'] = os.path.splitext(os.path.basename(path))[0]
        return item

    def __getitem__(self, index):
        if self.real is not None and random.random() < self.real_ratio:
            item = dict(self.real[random.randrange(len(self.real))])
            item['synthetic'] = False
            return item
        return self._synthetic_item(index % len(self.sources))

    def __len__(self):
        return len(self.sources)


@DATASET_REGISTRY.register()
class SynDMLDataset(OnlineSynthesisDataset):
    """The earlier name of :class:`OnlineSynthesisDataset` (it serves every degradation source, not only DML), kept
    so that existing option files (``type: SynDMLDataset``) still run."""
