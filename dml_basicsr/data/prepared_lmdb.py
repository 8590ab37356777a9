"""Paired sub-images in LMDB, BasicSR's way for big sets: ``basicsr prepare`` writes them, the paired datasets
read them with ``io_backend: {type: lmdb}``.

A prepared folder holds ``HR.lmdb`` and ``LR.lmdb`` (BasicSR's layout: data.mdb, lock.mdb and meta_info.txt
with lines ``<key>.png (h,w,c) <compress_level>``; the same keys in both) and ``prepared.yml`` (how it was
made, and the alignment it was made for). Sub-images are cut from the pairs as the dataset aligns them,
like BasicSR's ``extract_subimages.py`` (``crop_size``, ``step``, ``thresh_size``, in HR pixels) and stored
as lossless PNG of the decoded pixels (8- or 16-bit, gray or BGR); the LR sub-image is the LR as stored,
so that e.g. City100's ``lr_downscale`` still resizes at read time, on float data, as from disk.
"""
import contextlib
import glob
import json
import os

import cv2
import lmdb
import numpy as np
from basicsr.utils import FileClient
from basicsr.utils.lmdb_util import LmdbMaker

from dml_basicsr.utils.atomic_write import TMP_PREFIX, TMP_SUFFIX, tmp_path
from dml_basicsr.utils.bounded_read import MAX_META_INFO_BYTES, read_bounded
from dml_basicsr.utils.output_folder import OutputFolderError, check_output_file, output_file
from dml_basicsr.utils.safe_yaml import dump_yaml, read_yaml
from .errors import DatasetError, DatasetNotFoundError
from .image_io import decode_raw

HR_LMDB, LR_LMDB, INFO_FILE = 'HR.lmdb', 'LR.lmdb', 'prepared.yml'


def check_lmdb_complete(folder):
    """DatasetError unless ``<folder>/data.mdb`` holds every page its header declares.

    LMDB maps the file into memory: reading a page past the end of a truncated file (an interrupted copy, a full
    disk) kills the process with SIGBUS, no message. The header (read with plain reads) says how many pages there are.
    """
    data = os.path.join(folder, 'data.mdb')
    if not os.path.isfile(data):
        raise DatasetNotFoundError(f'{folder}: not a BasicSR LMDB folder (no data.mdb)')
    try:
        with lmdb.open(folder, readonly=True, lock=False, readahead=False) as env:
            needed = (env.info()['last_pgno'] + 1) * env.stat()['psize']
    except lmdb.Error as e:
        raise DatasetError(f'{data}: not a readable LMDB database ({type(e).__name__}: {e}); copy or prepare it '
                           'again') from None
    size = os.path.getsize(data)
    if size < needed:
        raise DatasetError(f'{data}: truncated ({size} bytes, its header declares {needed}): copy or prepare it again')


def lmdb_keys(folder):
    """Keys of a BasicSR LMDB folder (``<folder>/meta_info.txt``: ``<key>.png (h,w,c) ...``, a regular file of at
    most :data:`MAX_META_INFO_BYTES`), whose data.mdb is complete."""
    meta = os.path.join(folder, 'meta_info.txt')
    if not folder.endswith('.lmdb') or not os.path.isfile(meta):
        raise DatasetNotFoundError(f'{folder}: not a BasicSR LMDB folder (expected <name>.lmdb with meta_info.txt)')
    check_lmdb_complete(folder)
    text = read_bounded(meta, MAX_META_INFO_BYTES, DatasetError, 'meta_info files', encoding='utf-8')
    return [line.split('.')[0] for line in text.splitlines() if line.strip()]


# ----------------------------------------------------------------------------------------------- reading


def described(alignment):
    """'RealSRDataset x4 (LR stored at 1/4)' of an alignment dict."""
    return (f"{alignment.get('type')} x{alignment.get('crop_scale')} (LR stored at 1/{alignment.get('lr_ratio')} "
            'of the HR size)')


def prepared_pairs(root, alignment, name):
    """[(hr_name, lr_name)] of a prepared folder, ``<root>/HR.lmdb/<key>`` and ``<root>/LR.lmdb/<key>``.

    Args:
        alignment (dict): the reading dataset's ``type``, ``crop_scale`` and ``lr_ratio``; the folder must
            have been prepared for the same.
        name (str): how error messages start, e.g. "RealSRDataset 'RealSRV3_train'".
    """
    missing = [f for f in (HR_LMDB, LR_LMDB, INFO_FILE) if not os.path.exists(os.path.join(root, f))]
    if missing:
        raise DatasetNotFoundError(f'{name}: io_backend lmdb reads a folder made by basicsr prepare (holding '
                                   f'{HR_LMDB}, {LR_LMDB} and {INFO_FILE}), but {os.path.abspath(root)} has no '
                                   f'{", ".join(missing)}')
    info = read_yaml(os.path.join(root, INFO_FILE), DatasetError)
    if not isinstance(info, dict):
        raise DatasetError(f'{name}: {os.path.join(root, INFO_FILE)} is not a record of basicsr prepare (not a mapping)')
    made_for = {k: v for k, v in info.items() if k in alignment}
    if made_for != alignment:
        raise DatasetError(f'{name}: {root} was prepared for {described(made_for)}, but these options read it as '
                           f'{described(alignment)}; prepare it again from these options')
    hr, lr = (lmdb_keys(os.path.join(root, db)) for db in (HR_LMDB, LR_LMDB))
    if hr != lr or not hr:
        raise DatasetError(f'{name}: {root}: {HR_LMDB} and {LR_LMDB} do not hold the same (non-empty) list of keys')
    return [(os.path.join(root, HR_LMDB, key), os.path.join(root, LR_LMDB, key)) for key in hr]


def open_prepared(root):
    """A BasicSR FileClient on the two databases of a prepared folder, client keys 'gt' (HR) and 'lq' (LR)."""
    try:
        return FileClient('lmdb', db_paths=[os.path.join(root, HR_LMDB), os.path.join(root, LR_LMDB)],
                          client_keys=['gt', 'lq'])
    except lmdb.Error as e:
        raise DatasetError(f'{root}: cannot open its LMDB databases ({type(e).__name__}: {e}); a damaged folder: '
                           'prepare it again with basicsr prepare') from None


def read_prepared(client, path, client_key):
    """The stored pixels (see :func:`~dml_basicsr.data.image_io.decode_raw`) of ``<root>/<db>/<key>``."""
    try:
        buffer = client.get(os.path.basename(path), client_key)
    except lmdb.Error as e:
        raise DatasetError(f'{path}: cannot read it from the LMDB ({type(e).__name__}: {e}); a damaged folder: '
                           'prepare it again with basicsr prepare') from None
    if buffer is None:
        raise DatasetError(f'{path}: key not found in the LMDB (listed in its meta_info.txt)')
    return decode_raw(buffer, path)


# ----------------------------------------------------------------------------------------------- writing


def subimage_starts(length, crop, step, thresh):
    """Start offsets along one side, as BasicSR's extract_subimages: every ``step``, plus a last one flush
    with the end when more than ``thresh`` pixels would be left over; [0] when the side is not longer than crop."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop + 1, step))
    if length - (starts[-1] + crop) > thresh:
        starts.append(length - crop)
    return starts


def subimage_boxes(height, width, crop, step, thresh):
    """[(top, left, h, w)] of the sub-images of an (height, width) HR region, row by row."""
    h, w = min(crop, height), min(crop, width)
    return [(y, x, h, w) for y in subimage_starts(height, crop, step, thresh)
            for x in subimage_starts(width, crop, step, thresh)]


def check_cut(crop_size, step, thresh_size, compress_level, crop_scale):
    """Sub-images must start and end on the LR grid: crop_size and step multiples of the HR/LR ratio."""
    for what, value in (('crop_size', crop_size), ('step', step)):
        if value < 1 or value % crop_scale:
            raise DatasetError(f'{what} must be a positive multiple of the HR/LR ratio {crop_scale}, got {value}')
    if thresh_size < 0 or not 0 <= compress_level <= 9:
        raise DatasetError(f'thresh_size must be >= 0 and compress_level 0..9, got {thresh_size} and {compress_level}')


def encode_png(img, compress_level):
    """Lossless PNG bytes of a uint8/uint16 (h, w, 1 or 3) array."""
    ok, buffer = cv2.imencode('.png', np.ascontiguousarray(img), [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
    if not ok:
        raise DatasetError(f'cannot encode a sub-image of shape {img.shape} as PNG')
    return buffer


def put_subimages(makers, dataset, gt_path, lq_path, cut, seen):
    """Cut one pair into ``makers`` (HR, LR LmdbMaker); returns how many sub-images."""
    gt, lq = dataset.aligned_region(dataset.read_raw(gt_path, 'gt'), dataset.read_raw(lq_path, 'lq'), gt_path,
                                    lq_path)
    stem, r = os.path.splitext(os.path.basename(gt_path))[0], dataset.lr_ratio
    if stem in seen:
        raise DatasetError(f'{gt_path} and {seen[stem]} have the same name {stem!r}; their sub-image keys would clash')
    seen[stem] = gt_path
    boxes = subimage_boxes(*gt.shape[:2], cut['crop_size'], cut['step'], cut['thresh_size'])
    for index, (y, x, h, w) in enumerate(boxes, 1):
        key = f'{stem}_s{index:03d}'
        for maker, sub in zip(makers, (gt[y:y + h, x:x + w], lq[y // r:(y + h) // r, x // r:(x + w) // r])):
            maker.put(encode_png(sub, cut['compress_level']), key, sub.shape)
    return len(boxes)


def process_alive(pid):
    """Whether a process with this id runs (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # it runs, under another user
    return True


def remove_stale_partials(parent, base):
    """Remove the temporary folders that killed runs preparing ``base`` left in ``parent`` (its OutputFolder);
    a link named like one is left (never deleted through)."""
    pattern = os.path.join(glob.escape(parent.path), f'{TMP_PREFIX}{glob.escape(base)}.*{TMP_SUFFIX}')
    for path in glob.glob(pattern):
        pid = path[:-len(TMP_SUFFIX)].rsplit('.', 1)[-1]
        if pid.isdigit() and not process_alive(int(pid)):
            with contextlib.suppress(OutputFolderError):
                parent.remove_tree(os.path.basename(path), ignore_errors=True)


def write_prepared(dataset, output, crop_size=480, step=240, thresh_size=0, compress_level=1, progress=None,
                   inputs=()):
    """Cut every pair of a paired dataset (read from disk) into a prepared folder ``output``.

    Written into a hidden temporary folder beside ``output`` (made through the
    :class:`~dml_basicsr.utils.output_folder.OutputFolder` of its parent) and renamed at the end, so a killed run
    leaves nothing under the final name. ``progress``: an optional wrapper of the pair list (e.g. tqdm).
    ``inputs``: what the command reads (the dataset's folders): ``output`` must neither be, hold nor lie inside one
    (OutputFolderError, before anything is written).

    Returns:
        dict(pairs=N, subimages=M).
    """
    if os.path.exists(output):
        raise DatasetError(f'{output} exists; remove it or choose another output folder')
    check_cut(crop_size, step, thresh_size, compress_level, dataset.crop_scale)
    check_output_file(output, inputs)
    parent, base = output_file(output)  # its folder may hold the inputs beside the output
    parent.make()
    remove_stale_partials(parent, base)
    tmp_name = os.path.basename(tmp_path(os.path.abspath(output)))
    cut = dict(crop_size=crop_size, step=step, thresh_size=thresh_size, compress_level=compress_level)
    try:
        tmp = parent.new_folder(tmp_name, 'the temporary folder of --output')
        makers = [LmdbMaker(os.path.join(tmp.path, db), compress_level=compress_level) for db in (HR_LMDB, LR_LMDB)]
        seen, pairs = {}, dataset.pairs if progress is None else progress(dataset.pairs)
        count = sum(put_subimages(makers, dataset, gt_path, lq_path, cut, seen) for gt_path, lq_path in pairs)
        for maker in makers:
            maker.close()
        source = json.loads(json.dumps(dataset.opt, default=str))  # plain lists and scalars for YAML
        info = dict(dataset.alignment(), **cut, pairs=len(dataset.pairs), subimages=count, source=source)
        tmp.write_text(INFO_FILE, dump_yaml(info))
        parent.rename(tmp_name, base)
    except BaseException:
        with contextlib.suppress(OSError, OutputFolderError):
            parent.remove_tree(tmp_name, ignore_errors=True)
        raise
    return dict(pairs=len(dataset.pairs), subimages=count)
