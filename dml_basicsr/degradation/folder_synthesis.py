"""Offline Syn-DML dataset synthesis: a folder of HR images -> HR/LR pairs made by a trained DML model.

    from dml_basicsr.degradation import synthesize_folder
    synthesize_folder('datasets/DIV2K/HR', 'datasets/SynDML_x4', 'experiments/.../net_g_latest.pth')

writes ``<output>/HR/<stem>.png`` (the HR, cropped top-left to a multiple of the scale s, 8-bit),
``<output>/LR/<stem>.png`` (the DML LR plus AWGN, exactly HR/s, 8-bit) and ``<output>/meta_info.txt``
(one file name per line), which BasicSR's ``PairedImageDataset`` reads as is with
``meta_info_file: <output>/meta_info.txt`` and ``filename_tmpl: '{}'``.

* Safe: an output folder that overlaps the input (the same folder, the input inside the output's
  ``HR/`` or ``LR/``, the output inside the input) is refused before anything is written.
* Resumable: a pair whose two files exist is skipped; files are written atomically
  (:mod:`dml_basicsr.utils.atomic_write`), so an interrupt never leaves a partial file under a final
  name; ``meta_info.txt`` is (atomically) rewritten when every image is done.
* Never mixed: ``<output>/synthesis.yml`` records what determines the pairs (the checkpoint's sha256,
  its scale, the noise sigma, the seed, the colour). A run on a folder made with other values (or
  holding pairs without that record) is refused; ``overwrite=True`` deletes those pairs and starts anew.
* Deterministic: the noise of an image comes from a generator seeded by ``(seed, crc32(file name))``,
  not by the processing order, so resumed and fresh runs write identical files.
* Large images are degraded tile by tile (:func:`~dml_basicsr.degradation.tiled.degrade_tiled`); the
  stitched noise-free LR equals ``DMLDegradation.degrade_clean`` on the whole image up to float rounding.
"""
import os
import zlib

import cv2
import numpy as np
import torch
from tqdm import tqdm

from dml_basicsr.data.errors import DatasetError
from dml_basicsr.data.image_io import convert_color, is_image_file, list_images, read_image
from dml_basicsr.utils.atomic_write import TMP_PREFIX, remove_stale_tmp, write_bytes_atomic, write_text_atomic
from dml_basicsr.utils.checkpoint import file_sha256
from dml_basicsr.utils.safe_yaml import dump_yaml, read_yaml
from .dml_degradation import DMLDegradation, sigma_range
from .tiled import check_tile_overlap, degrade_tiled

META_INFO = 'meta_info.txt'
RECORD = 'synthesis.yml'
# The recorded values that determine the pairs; the paths are recorded for information only.
RECORD_KEYS = ('checkpoint_sha256', 'scale', 'noise_sigma', 'seed', 'color')


class OutputFolderError(ValueError):
    """The output folder overlaps the input, or holds pairs made with other parameters; the message says which."""


def write_png_atomic(path, img):
    ok, buf = cv2.imencode('.png', img)
    if not ok:
        raise OSError(f'{path}: PNG encoding failed')
    write_bytes_atomic(path, buf.tobytes())


def _output_names(input_dir, names):
    """Input file name -> output '<stem>.png', checking the names BasicSR's meta_info can carry."""
    outputs, seen, problems = {}, {}, []
    for name in names:
        out = os.path.splitext(name)[0] + '.png'
        if any(ch.isspace() for ch in name):
            problems.append(f'{name!r} has white space (meta_info.txt lines are split at spaces)')
        elif out in seen:
            problems.append(f'{seen[out]} and {name} would both be written as {out}')
        seen[out] = name
        outputs[name] = out
    if problems:
        raise DatasetError(f'{input_dir}: cannot name the outputs: {"; ".join(problems)}')
    return outputs


def noise_generator(seed, name):
    """The noise generator of one image: seeded by ``seed`` and the CRC-32 of its file name."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode('utf-8'))])


def _to_tensor(img):
    """HWC numpy (BGR or 1 channel) -> (1, C, H, W) float32 tensor (RGB)."""
    if img.shape[2] == 3:
        img = img[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).unsqueeze(0)


def _to_uint8_hwc(chw):
    """(C, H, W) float RGB in [0, 1] -> HWC uint8 BGR (or 1 channel)."""
    img = np.round(np.clip(chw, 0, 1) * 255.).astype(np.uint8).transpose(1, 2, 0)
    if img.shape[2] == 3:
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)


def _draw_sigma(noise_sigma, rng):
    if isinstance(noise_sigma, (tuple, list)):
        return float(rng.uniform(*sigma_range(noise_sigma)))
    return sigma_range(noise_sigma)[0]


def synthesize_image(deg, path, name, noise_sigma=5.0, seed=0, tile=512, tile_overlap=64, device='cpu',
                     color=None):
    """One HR file -> (HR uint8, LR uint8), HWC, BGR (or 1 channel for ``color='y'``).

    The HR is quantised to 8 bits first and the LR is made from that quantised HR, so the pair on
    disk is consistent also for 16-bit inputs.
    """
    s = deg.scale
    img = convert_color(read_image(path), color)
    h, w = img.shape[0] // s * s, img.shape[1] // s * s
    k = deg.net.kernel_size
    if min(h, w) < max(4, k // 2 + 1):
        raise DatasetError(f'{path}: image {img.shape[0]}x{img.shape[1]} is too small for the model '
                           f'(scale {s}, kernel size {k}: after cropping to a multiple of {s} both sides '
                           f'must be at least {max(4, k // 2 + 1)})')
    hr8 = np.round(img[:h, :w] * 255.).astype(np.uint8)
    hr = _to_tensor(hr8.astype(np.float32) / 255.)
    try:
        lr = degrade_tiled(deg, hr, tile, tile_overlap, device=device)[0].numpy()
    except ValueError as e:
        raise DatasetError(f'{path}: {e}') from e
    rng = noise_generator(seed, name)
    sigma = _draw_sigma(noise_sigma, rng)
    if sigma:
        lr = lr + np.float32(sigma / 255.) * rng.standard_normal(lr.shape, dtype=np.float32)
    return hr8, _to_uint8_hwc(lr)


def _check_arguments(color, seed, tile, tile_overlap, device):
    if color not in (None, 'rgb', 'y'):
        raise ValueError(f"color must be 'rgb', 'y' or None, got {color!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
    if tile is not None and (isinstance(tile, bool) or int(tile) < 0):
        raise ValueError(f'tile must be a non-negative number of pixels (0: no tiling), got {tile!r}')
    if int(tile_overlap) < 0:
        raise ValueError(f'tile_overlap must be non-negative, got {tile_overlap!r}')
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'device {device!r} requested, but CUDA is not available')


def _inside(path, folder):
    """Whether the real path ``path`` is the real path ``folder`` or inside it."""
    return os.path.commonpath([path, folder]) == folder


def check_no_overlap(input_dir, output_dir):
    """OutputFolderError if writing ``output_dir`` could touch the input images: the same folder, the input
    inside the output's HR/ or LR/ (or one of them), or the output inside the input."""
    src, out = os.path.realpath(input_dir), os.path.realpath(output_dir)
    if src == out:
        reason = 'the same folder'
    elif _inside(src, os.path.join(out, 'HR')) or _inside(src, os.path.join(out, 'LR')):
        reason = "the input is the output's HR/ or LR/, or inside it"
    elif _inside(out, src):
        reason = 'the output is inside the input'
    else:
        return
    raise OutputFolderError(f'output {output_dir} overlaps input {input_dir} ({reason}): the pairs would overwrite '
                            'or mix with the source images; choose an output folder outside the input')


def synthesis_record(input_dir, checkpoint, scale, noise_sigma, seed, color):
    """The content of ``synthesis.yml``: the paths, and the values of :data:`RECORD_KEYS`."""
    low, high = sigma_range(noise_sigma)
    return {'input': os.path.abspath(input_dir), 'checkpoint': os.path.abspath(checkpoint),
            'checkpoint_sha256': file_sha256(checkpoint), 'scale': int(scale),
            'noise_sigma': [low, high] if isinstance(noise_sigma, (tuple, list)) else low, 'seed': int(seed),
            'color': color or 'rgb'}


def _read_record(path):
    """The dict in ``path``, None if there is no such file; OutputFolderError if it is not a record."""
    if not os.path.isfile(path):
        return None
    record = read_yaml(path, OutputFolderError)
    if not isinstance(record, dict):
        raise OutputFolderError(f'{path}: not a synthesis record (not a mapping); overwrite (--overwrite) remakes '
                                'the folder')
    return record


def _clear_output(output_dir):
    """Delete the record, the pairs (and temporary files) in HR/ and LR/ and ``meta_info.txt`` of ``output_dir``."""
    paths = [os.path.join(output_dir, RECORD), os.path.join(output_dir, META_INFO)]
    for folder in (os.path.join(output_dir, 'HR'), os.path.join(output_dir, 'LR')):
        if os.path.isdir(folder):
            paths += [os.path.join(folder, name) for name in os.listdir(folder)
                      if is_image_file(name) or name.startswith(TMP_PREFIX)]
    for path in paths:
        if os.path.isfile(path):
            os.remove(path)


def prepare_output(output_dir, record, overwrite=False):
    """Make ``output_dir`` ready for the pairs of ``record`` (see :func:`synthesis_record`) and record it.

    A folder with the same record is resumed. One recorded with other values, or holding pairs but no
    record, is an OutputFolderError; unless ``overwrite``: then its pairs are deleted first.
    """
    hr_dir, lr_dir = os.path.join(output_dir, 'HR'), os.path.join(output_dir, 'LR')
    record_path = os.path.join(output_dir, RECORD)
    if overwrite:
        _clear_output(output_dir)
    existing = _read_record(record_path)
    if existing is not None:
        changed = [f'{key} {existing.get(key)!r} -> {record[key]!r}' for key in RECORD_KEYS
                   if existing.get(key) != record[key]]
        if changed:
            raise OutputFolderError(f'{output_dir} holds pairs made with other parameters ({"; ".join(changed)}); '
                                    'choose another output folder, or overwrite (--overwrite) to delete them')
    elif any(list_images(d) for d in (hr_dir, lr_dir) if os.path.isdir(d)):
        raise OutputFolderError(f'{output_dir} holds pairs in HR/ or LR/ but no {RECORD} saying how they were made; '
                                'choose another output folder, or overwrite (--overwrite) to delete them')
    for folder in (hr_dir, lr_dir):
        os.makedirs(folder, exist_ok=True)
        remove_stale_tmp(folder)
    if existing is None:
        write_text_atomic(record_path, dump_yaml(record))


def _load_degradation(checkpoint, noise_sigma, color, tile, tile_overlap):
    deg = DMLDegradation.from_checkpoint(checkpoint, noise_sigma=noise_sigma)
    if color == 'y' and deg.net.num_in_ch != 1:
        raise ValueError(f"color='y' needs a Y model (num_in_ch 1); {checkpoint} takes {deg.net.num_in_ch} channels")
    if tile:
        check_tile_overlap(deg.net, tile_overlap, checkpoint)
    return deg


def synthesize_folder(input_dir, output_dir, checkpoint, noise_sigma=5.0, seed=0, tile=512, tile_overlap=64,
                      device='cpu', color=None, progress=True, overwrite=False):
    """Make a Syn-DML paired dataset from a folder of HR images (see the module docstring).

    Args:
        input_dir: folder of HR images (png/jpg/bmp/tif/webp; gray, RGBA and 16-bit are read).
        output_dir: gets ``HR/``, ``LR/`` and ``meta_info.txt``.
        checkpoint: a DMLNet ``.pth`` (``{'params': state_dict}`` as ``basicsr train`` saves).
        noise_sigma: AWGN sigma on the 0-255 scale; 0 disables; a ``(low, high)`` pair draws one per image.
        seed: non-negative int; an image's noise is seeded by ``(seed, crc32(its file name))``.
        tile: HR tile side (rounded up to a multiple of lcm(4, s)); 0/None degrades whole images.
        tile_overlap: context margin of a tile (rounded up likewise; at least ``min_tile_overlap``).
        device: 'cpu' or 'cuda' (the noise is drawn on the CPU, so it does not depend on it).
        color: None/'rgb' keeps the colour image; 'y' writes BasicSR's Y channel (1-channel PNGs).
        progress: show a tqdm progress bar.
        overwrite: delete the pairs of an earlier run with other parameters (or without a record) first.

    Returns:
        dict with ``scale``, ``names`` (output file names, sorted), ``written`` and ``skipped`` counts.
    """
    check_no_overlap(input_dir, output_dir)
    names = list_images(input_dir)
    if not names:
        raise DatasetError(f'{input_dir}: no image files found')
    outputs = _output_names(input_dir, names)
    _check_arguments(color, seed, tile, tile_overlap, device)
    deg = _load_degradation(checkpoint, noise_sigma, color, tile, tile_overlap)
    deg.net.to(device)
    prepare_output(output_dir, synthesis_record(input_dir, checkpoint, deg.scale, noise_sigma, seed, color), overwrite)

    hr_dir, lr_dir = os.path.join(output_dir, 'HR'), os.path.join(output_dir, 'LR')

    written = skipped = 0
    bar = tqdm(names, desc='synthesize', unit='img', disable=not progress)
    for name in bar:
        hr_path, lr_path = os.path.join(hr_dir, outputs[name]), os.path.join(lr_dir, outputs[name])
        if os.path.isfile(hr_path) and os.path.isfile(lr_path):
            skipped += 1
        else:
            hr8, lr8 = synthesize_image(deg, os.path.join(input_dir, name), name, noise_sigma, seed, tile,
                                        tile_overlap, device, color)
            write_png_atomic(hr_path, hr8)
            write_png_atomic(lr_path, lr8)
            written += 1
        bar.set_postfix(written=written, skipped=skipped)
    bar.close()

    done = sorted(out for out in outputs.values()
                  if os.path.isfile(os.path.join(hr_dir, out)) and os.path.isfile(os.path.join(lr_dir, out)))
    write_text_atomic(os.path.join(output_dir, META_INFO), ''.join(f'{out}\n' for out in done))
    return {'scale': deg.scale, 'names': done, 'written': written, 'skipped': skipped}
