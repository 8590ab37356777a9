"""Offline Syn-DML dataset synthesis: a folder of HR images -> HR/LR pairs made by a trained DML model.

    from dml_basicsr.degradation import synthesize_folder
    synthesize_folder('datasets/DIV2K/HR', 'datasets/SynDML_x4', 'experiments/.../net_g_latest.pth')

writes ``<output>/HR/<stem>.png`` (the HR, cropped top-left to a multiple of the scale s, 8-bit),
``<output>/LR/<stem>.png`` (the DML LR plus AWGN, exactly HR/s, 8-bit) and ``<output>/meta_info.txt``
(one file name per line), which BasicSR's ``PairedImageDataset`` reads as is with
``meta_info_file: <output>/meta_info.txt`` and ``filename_tmpl: '{}'``.

* Safe: an output folder that overlaps the input (the same folder, the input inside the output's
  ``HR/`` or ``LR/``, the output inside the input), checked on the resolved paths, or whose ``HR/``, ``LR/``,
  record or ``meta_info.txt`` is a symbolic link, is refused before anything is written
  (:mod:`dml_basicsr.utils.output_folder`); ``overwrite=True`` deletes only the pairs the record lists (never
  through a link), and a folder holding images that no record lists is refused, with or without it.
* One writer: the output folder is locked (``fcntl.flock`` on the folder, released when the process ends, also by
  a kill) while it is written; a second run into it is refused.
* Resumable: a pair whose two files exist is skipped; files are written atomically
  (:mod:`dml_basicsr.utils.atomic_write`), so an interrupt never leaves a partial file under a final
  name; ``meta_info.txt`` is (atomically) rewritten when every image is done.
* Never mixed: ``<output>/synthesis.yml`` records what determines the pairs (the checkpoint's sha256,
  its scale, the noise (AWGN and its sigma, or the fitted noise's sha256), the seed, the colour) and the input
  (each file's name, size and mtime). A run on a folder made with other values or from another input (or
  holding pairs without that record) is refused, naming the difference; ``overwrite=True`` deletes those pairs and starts anew.
* Deterministic: the noise of an image comes from a generator seeded by ``seed`` and the file name,
  not by the processing order, so resumed and fresh runs write identical files.
* Large images are degraded tile by tile (:func:`~dml_basicsr.degradation.tiled.degrade_tiled`); the
  stitched noise-free LR equals ``DMLDegradation.degrade_clean`` on the whole image up to float rounding.
"""
import hashlib
import os

import cv2
import numpy as np
import torch
from basicsr.utils import tensor2img
from tqdm import tqdm

from dml_basicsr.data.errors import DatasetError
from dml_basicsr.data.image_io import check_image_file, convert_color, list_images, read_image
from dml_basicsr.data.pair_transforms import image_to_tensor
from dml_basicsr.utils.bounded_read import MAX_META_INFO_BYTES, read_bounded
from dml_basicsr.utils.checkpoint import file_sha256
from dml_basicsr.utils.devices import torch_device
from dml_basicsr.utils.output_folder import OutputFolder
from dml_basicsr.utils.output_folder import OutputFolderError, check_targets, output_lock  # noqa: F401 (re-exported)
from dml_basicsr.utils.safe_yaml import dump_yaml, read_yaml
from .dml_degradation import DMLDegradation, sigma_range
from .dsgan_degradation import DSGANSynthesis
from .noise_fit import noise_path
from .pretrained_models import pretrained_path
from .tiled import auto_tile, check_tile_overlap, degrade_tiled

META_INFO = 'meta_info.txt'
RECORD = 'synthesis.yml'
# The recorded values that determine the pairs; the paths are recorded for information only.
RECORD_KEYS = ('checkpoint_sha256', 'scale', 'noise', 'noise_sigma', 'seed', 'color')
# What the record says of the input: {file name: {size, mtime_ns}}.
INPUT_FILES = 'input_files'


def write_png_atomic(path, img):
    """``img`` as the PNG ``path``, written whole through the OutputFolder of its folder (never through a link)."""
    ok, buf = cv2.imencode('.png', img)
    if not ok:
        raise OSError(f'{path}: PNG encoding failed')
    OutputFolder(os.path.dirname(path), what='pair folder').write_bytes(os.path.basename(path), buf.tobytes())


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
    """The (CPU) noise generator of one image, seeded by ``seed`` and its file name (the first 32 bits of their
    SHA-256: torch's CPU generator keeps only 32 bits of a seed)."""
    digest = hashlib.sha256(f'{int(seed)}/{name}'.encode('utf-8')).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:4], 'little'))


def usable_size(deg, shape, path):
    """(h, w) of an image of ``shape`` cropped to a multiple of the scale; DatasetError naming ``path`` if that is
    too small for the model's kernel."""
    s, k = deg.scale, getattr(deg.net, 'kernel_size', 1)
    h, w = shape[0] // s * s, shape[1] // s * s
    if min(h, w) < max(4, k // 2 + 1):
        raise DatasetError(f'{path}: image {shape[0]}x{shape[1]} is too small for the model '
                           f'(scale {s}, kernel size {k}: after cropping to a multiple of {s} both sides '
                           f'must be at least {max(4, k // 2 + 1)})')
    return h, w


def pair_written(output_dir, name):
    """Whether ``OUTPUT/HR/<name>`` and ``OUTPUT/LR/<name>`` both exist (written whole: files are renamed into
    place)."""
    return all(os.path.isfile(os.path.join(output_dir, folder, name)) for folder in ('HR', 'LR'))


def check_inputs(deg, input_dir, names, done=()):
    """Decode every input image once and check its size for the model: whatever would stop the run is raised
    before the output folder or its record exists (decoding is a small part of synthesising an image). Images whose
    pair a resumed run has written already (``done``) are not read again."""
    for name in names:
        if name not in done:
            path = os.path.join(input_dir, name)
            usable_size(deg, read_image(path).shape, path)


def synthesize_image(deg, path, name, seed=0, tile='auto', tile_overlap=64, device='cpu', color=None):
    """One HR file -> (HR uint8, LR uint8), HWC, BGR (or 1 channel for ``color='y'``).

    The HR is quantised to 8 bits first and the LR is made from that quantised HR, so the pair on
    disk is consistent also for 16-bit inputs. The noise is ``deg``'s own (:meth:`DMLDegradation.add_noise`: AWGN
    or the fitted noise), drawn on the CPU from :func:`noise_generator`.
    """
    img = convert_color(read_image(path), color)
    h, w = usable_size(deg, img.shape, path)
    hr8 = np.round(img[:h, :w] * 255.).astype(np.uint8)
    hr = image_to_tensor(hr8.astype(np.float32) / 255.)[None]
    try:
        if tile == 'auto':
            tile = auto_tile(deg.net, hr.shape[-2], hr.shape[-1], device)
        lr = degrade_tiled(deg, hr, tile, tile_overlap, device=device).cpu()
    except ValueError as e:
        raise DatasetError(f'{path}: {e}') from e
    return hr8, tensor2img(deg.add_noise(lr, noise_generator(seed, name)))


def _check_arguments(color, seed, tile, tile_overlap, device, noise_sigma):
    sigma_range(noise_sigma)
    if color not in (None, 'rgb', 'y'):
        raise ValueError(f"color must be 'rgb', 'y' or None, got {color!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
    if tile != 'auto' and tile is not None and (isinstance(tile, bool) or not isinstance(tile, (int, np.integer))
                                                 or tile < 0):
        raise ValueError(f"tile must be 'auto' or a non-negative number of pixels (0: no tiling), got {tile!r}")
    if int(tile_overlap) < 0:
        raise ValueError(f'tile_overlap must be non-negative, got {tile_overlap!r}')
    torch_device(device)


def check_no_overlap(input_dir, output_dir, inputs=(), pairs=()):
    """OutputFolderError if writing ``output_dir`` could touch what the run reads (the input folder and ``inputs``,
    the files: images, checkpoint, noise file) or go outside it: the same folder, the input inside the output's HR/
    or LR/ (or one of them), the output inside the input or holding it, HR/, LR/, the record, or meta_info.txt a
    symbolic link, or a target (those and the files of the ``pairs`` names in HR/ and LR/) that is not a regular file
    (a folder, a FIFO) or resolves to an input (:func:`dml_basicsr.utils.output_folder.check_targets`)."""
    check_targets(output_dir, (RECORD, META_INFO), [input_dir, *inputs], target_folders=('HR', 'LR'),
                  files=[os.path.join(sub, name) for sub in ('HR', 'LR') for name in pairs])


def synthesis_inputs(input_dir, names, checkpoint, noise=None):
    """The files a synthesis reads: the input images ``names`` of ``input_dir``, the checkpoint (when a file is
    given) and, for the fitted noise, its noise file."""
    files = [os.path.join(input_dir, name) for name in names]
    if checkpoint is not None:
        files += [checkpoint] + ([noise_path(checkpoint)] if noise == 'fitted' else [])
    return files


def input_files(input_dir, names):
    """{name: {size, mtime_ns}} of the input files ``names``: what identifies the input in the record."""
    files = {}
    for name in names:
        st = os.stat(os.path.join(input_dir, name))
        files[name] = {'size': st.st_size, 'mtime_ns': st.st_mtime_ns}
    return files


def synthesis_record(input_dir, checkpoint, scale, noise_sigma, seed, color, names=None, noise='awgn',
                     pretrained=None):
    """The content of ``synthesis.yml``: the paths, the values of :data:`RECORD_KEYS` and (given the input file
    ``names``) the input's files (:func:`input_files`). ``noise``: 'awgn' (of ``noise_sigma``) or 'fitted' (the
    record then holds the noise file's sha256 instead of a sigma)."""
    low, high = sigma_range(noise_sigma)
    record = {'input': os.path.abspath(input_dir), 'checkpoint': os.path.abspath(checkpoint),
              'checkpoint_sha256': file_sha256(checkpoint), 'scale': int(scale), 'noise': noise,
              'noise_sigma': [low, high] if isinstance(noise_sigma, (tuple, list)) else low, 'seed': int(seed),
              'color': color or 'rgb'}
    if noise == 'fitted':
        record['noise'] = (f'fitted (shipped with {pretrained})' if pretrained is not None else
                           f'fitted (sha256 {file_sha256(noise_path(checkpoint))})')
        record['noise_sigma'] = None
    if names is not None:
        record[INPUT_FILES] = input_files(input_dir, names)
    return record


def _read_record(path):
    """The dict in ``path``, None if there is no such file; OutputFolderError if it is not a record."""
    if not os.path.lexists(path):
        return None
    record = read_yaml(path, OutputFolderError)
    if not isinstance(record, dict) or not isinstance(record.get(INPUT_FILES, {}), dict):
        raise OutputFolderError(f'{path}: not a synthesis record (not a mapping with input_files); move it away or '
                                'choose another output folder')
    return record


def input_difference(old, new, shown=3):
    """How the input files ``new`` differ from the recorded ``old`` ({name: {size, mtime_ns}}), '' if not."""
    changes = [f'{name} is new' for name in sorted(set(new) - set(old))]
    changes += [f'{name} is gone' for name in sorted(set(old) - set(new))]
    for name in sorted(set(old) & set(new)):
        for key in ('size', 'mtime_ns'):
            if (old[name] or {}).get(key) != new[name][key]:
                changes.append(f'{name} {key} {(old[name] or {}).get(key)} -> {new[name][key]}')
                break
    more = f' and {len(changes) - shown} more' if len(changes) > shown else ''
    return '; '.join(changes[:shown]) + more


def _meta_info_names(output_dir):
    """The names that the legacy ``meta_info.txt`` of ``output_dir`` lists ([] without one); OutputFolderError if it
    is larger than :data:`MAX_META_INFO_BYTES`."""
    path = os.path.join(output_dir, META_INFO)
    if not os.path.isfile(path):
        return []
    text = read_bounded(path, MAX_META_INFO_BYTES, OutputFolderError, 'meta_info files').decode('utf-8', 'replace')
    return [line.strip() for line in text.splitlines() if line.strip()]


def recorded_pairs(output_dir, record):
    """The pair file names that the run of ``record`` wrote (or was writing): the outputs of its input files, or
    for a record of an earlier version (without input files) those meta_info.txt lists."""
    if record is None:
        return set()
    if INPUT_FILES in record:
        return {os.path.splitext(name)[0] + '.png' for name in record[INPUT_FILES]}
    return set(_meta_info_names(output_dir))


def foreign_images(output_dir, ours):
    """'HR/x.png', ... : the images in HR/ and LR/ of ``output_dir`` that are not among the names ``ours``."""
    found = []
    for sub in ('HR', 'LR'):
        folder = os.path.join(output_dir, sub)
        if os.path.isdir(folder):
            found += [f'{sub}/{name}' for name in list_images(folder) if name not in ours]
    return found


def output_folder(output_dir):
    """The :class:`OutputFolder` of the output itself (its record and meta_info.txt). Not checked against the input
    here: :func:`check_no_overlap` does that precisely (an input elsewhere inside the output is never written)."""
    return OutputFolder(output_dir)


def pair_folders(output_dir, inputs=()):
    """The :class:`OutputFolder` ``HR/`` and ``LR/`` of ``output_dir``: neither a link, nor holding, being or lying
    inside one of ``inputs``."""
    return [OutputFolder(os.path.join(output_dir, sub), inputs, what='pair folder') for sub in ('HR', 'LR')]


def _remove_pairs(output_dir, names, inputs=()):
    """Delete this output's pairs: the entries of HR/ and LR/ (regular files, or a link itself, never what it points
    to) whose names are among ``names`` and that are images directly in that folder; a recorded name is data that
    someone else may have written, so it is matched against the folder's own listing and never joined into a path
    (``../x.png`` or an absolute name reaches nothing). Then the temporary files of interrupted runs, meta_info.txt,
    and the record last: a deletion that fails leaves the record that lists what remains."""
    names = set(names)
    for folder in pair_folders(output_dir, inputs):
        if not os.path.isdir(folder.path):
            continue
        for name in list_images(folder.path):
            path = os.path.join(folder.path, name)
            if name in names and (os.path.islink(path) or os.path.isfile(path)):
                folder.remove(name)
        folder.remove_partial_files()
    output = output_folder(output_dir)
    for name in (META_INFO, RECORD):
        path = os.path.join(output_dir, name)
        if os.path.islink(path) or os.path.isfile(path):
            output.remove(name)


def _record_problem(existing, record):
    """What makes the folder of the record ``existing`` not the one for ``record`` ('' if it is)."""
    changed = [f'{key} {existing.get(key)!r} -> {record[key]!r}' for key in RECORD_KEYS
               if existing.get(key) != record[key]]
    if changed:
        return f'holds pairs made with other parameters ({"; ".join(changed)})'
    if INPUT_FILES not in existing:
        return f'holds pairs whose {RECORD} does not say which input files made them (an earlier version wrote it)'
    difference = input_difference(existing[INPUT_FILES], record[INPUT_FILES])
    if difference:
        return f'holds pairs made from another input ({difference})'
    return ''


def prepare_output(output_dir, record, overwrite=False, inputs=()):
    """Make ``output_dir`` ready for the pairs of ``record`` (see :func:`synthesis_record`) and record it.
    ``inputs``: the input folder (HR/ and LR/ must neither hold nor lie inside it).

    A folder with the same record (the same values, the same input files) is resumed. One recorded with other
    values or from another input is an OutputFolderError; unless ``overwrite``: then the pairs its record lists
    are deleted first. Images in HR/ or LR/ that no record lists are an OutputFolderError either way (they are
    not this command's to delete).
    """
    record_path = os.path.join(output_dir, RECORD)
    existing = _read_record(record_path)
    ours = recorded_pairs(output_dir, existing)
    foreign = foreign_images(output_dir, ours)
    if foreign:
        listed = ', '.join(foreign[:3]) + (f' and {len(foreign) - 3} more' if len(foreign) > 3 else '')
        what = f'no {RECORD}' if existing is None else f'a {RECORD} that does not list them'
        raise OutputFolderError(f'{output_dir} holds pairs in HR/ or LR/ ({listed}) but {what} saying how they were '
                                'made; --overwrite deletes only the pairs a record lists: move them away or choose '
                                'another output folder')
    problem = _record_problem(existing, record) if existing is not None else ''
    if problem and not overwrite:
        raise OutputFolderError(f'{output_dir} {problem}; choose another output folder, or overwrite (--overwrite) '
                                'to delete them')
    if overwrite and existing is not None:
        _remove_pairs(output_dir, ours, inputs)
        existing = None
    for folder in pair_folders(output_dir, inputs):
        folder.make()
        folder.remove_partial_files()
    if existing is None:
        output_folder(output_dir).write_text(RECORD, dump_yaml(record))


def _load_dsgan(checkpoint, dsgan_scale, noise_sigma, noise, tile):
    if noise not in (None, 'awgn') or noise_sigma:
        raise ValueError('a DSGAN generator makes its own noise: noise_sigma (--noise-sigma) and noise '
                         '(--noise) apply to DML models only')
    if tile not in ('auto', 0, None):
        raise ValueError(f"tile {tile}: a DSGAN degradation is applied to whole images (its generator is not "
                         "tiled exactly); use 'auto' or 0")
    return DSGANSynthesis.from_checkpoint(checkpoint, dsgan_scale)


def _load_degradation(checkpoint, noise_sigma, color, tile, tile_overlap, noise, pretrained=None, dsgan_scale=None):
    if dsgan_scale is not None:
        deg = _load_dsgan(checkpoint, dsgan_scale, noise_sigma, noise, tile)
    elif pretrained is not None:
        deg = DMLDegradation.pretrained(pretrained, noise_sigma=noise_sigma, noise=noise)
    else:
        deg = DMLDegradation.from_checkpoint(checkpoint, noise_sigma=noise_sigma, noise=noise)
    if color == 'y' and deg.net.num_in_ch != 1:
        raise ValueError(f"color='y' needs a Y model (num_in_ch 1); {checkpoint} takes {deg.net.num_in_ch} channels")
    if tile and dsgan_scale is None:
        check_tile_overlap(deg.net, tile_overlap, checkpoint)
    return deg


def synthesize_folder(input_dir, output_dir, checkpoint, noise_sigma=None, seed=0, tile='auto', tile_overlap=64,
                      device='cpu', color=None, progress=True, overwrite=False, noise=None, pretrained=None,
                      dsgan_scale=None):
    """Make a Syn-DML paired dataset from a folder of HR images (see the module docstring).

    Args:
        input_dir: folder of HR images (png/jpg/bmp/tif/webp; gray, RGBA and 16-bit are read).
        output_dir: gets ``HR/``, ``LR/`` and ``meta_info.txt``.
        checkpoint: a DMLNet ``.pth`` (``{'params': state_dict}`` as ``basicsr train`` saves); None with
            ``pretrained``.
        noise_sigma: AWGN sigma on the 0-255 scale; 0 disables; a ``(low, high)`` pair draws one per image; None
            (default): 5 for a DML model, 0 (the only value) for a DSGAN.
        noise: None/'awgn' (of ``noise_sigma``) or 'fitted': the noise ``basicsr fit-noise --save-beside`` fitted
            for the checkpoint (``<checkpoint>.noise.yml``; a shipped model's own), as ``DMLDegradation`` draws it
            online.
        pretrained: the name of a shipped model (``DMLDegradation.pretrained``) instead of ``checkpoint``.
        dsgan_scale: with it, ``checkpoint`` is the net_g of a DSGANModel training of this scale
            (:class:`~dml_basicsr.degradation.dsgan_degradation.DSGANSynthesis`: bicubic /s, then its generator,
            whole images, no noise added).
        seed: non-negative int; an image's noise is seeded by it and the file name (:func:`noise_generator`).
        tile: HR tile side (rounded up to a multiple of lcm(4, s)); 0/None degrades whole images; 'auto' (default)
            whole images where the memory allows, else the largest tile that fits (:func:`auto_tile`).
        tile_overlap: context margin of a tile (rounded up likewise; at least ``min_tile_overlap``).
        device: 'cpu' or 'cuda' (the noise is drawn on the CPU, so it does not depend on it).
        color: None/'rgb' keeps the colour image; 'y' writes BasicSR's Y channel (1-channel PNGs).
        progress: show a tqdm progress bar.
        overwrite: delete the pairs of an earlier run with other parameters or from another input first (only
            those its record lists; images that no record lists are refused either way).

    Returns:
        dict with ``scale``, ``names`` (output file names, sorted), ``written`` and ``skipped`` counts.
    """
    check_no_overlap(input_dir, output_dir)  # before anything is read, and again once the output is locked
    names = list_images(input_dir)
    if not names:
        raise DatasetError(f'{input_dir}: no image files found')
    outputs = _output_names(input_dir, names)
    inputs = synthesis_inputs(input_dir, names, checkpoint, noise)
    check_no_overlap(input_dir, output_dir, inputs, outputs.values())  # every target, before anything is written
    if noise_sigma is None:
        noise_sigma = 0.0 if dsgan_scale is not None else 5.0
    _check_arguments(color, seed, tile, tile_overlap, device, noise_sigma)
    for name in names:  # an empty or oversized image is refused before anything is decoded
        check_image_file(os.path.join(input_dir, name))
    deg = _load_degradation(checkpoint, noise_sigma, color, tile, tile_overlap, noise, pretrained, dsgan_scale)
    if pretrained is not None:
        checkpoint = str(pretrained_path(pretrained))
    done = {name for name in names if pair_written(output_dir, outputs[name])}
    check_inputs(deg, input_dir, names, done)
    deg.net.to(device)
    record = synthesis_record(input_dir, checkpoint, deg.scale, noise_sigma, seed, color, names, deg.noise,
                              pretrained)
    with output_lock(output_dir, 'basicsr synthesize'):
        check_no_overlap(input_dir, output_dir, inputs, outputs.values())
        prepare_output(output_dir, record, overwrite, [input_dir])
        return _write_pairs(deg, input_dir, output_dir, names, outputs, seed, tile, tile_overlap, device, color,
                            progress)


def _write_pairs(deg, input_dir, output_dir, names, outputs, seed, tile, tile_overlap, device, color, progress):
    """The loop of :func:`synthesize_folder` over the input images, then ``meta_info.txt``; its result."""
    hr_dir, lr_dir = os.path.join(output_dir, 'HR'), os.path.join(output_dir, 'LR')

    written = skipped = 0
    bar = tqdm(names, desc='synthesize', unit='img', disable=not progress)
    for name in bar:
        hr_path, lr_path = os.path.join(hr_dir, outputs[name]), os.path.join(lr_dir, outputs[name])
        if pair_written(output_dir, outputs[name]):
            skipped += 1
        else:
            hr8, lr8 = synthesize_image(deg, os.path.join(input_dir, name), name, seed, tile, tile_overlap, device,
                                        color)
            write_png_atomic(hr_path, hr8)
            write_png_atomic(lr_path, lr8)
            written += 1
        bar.set_postfix(written=written, skipped=skipped)
    bar.close()

    done = sorted(out for out in outputs.values()
                  if pair_written(output_dir, out))
    output_folder(output_dir).write_text(META_INFO, ''.join(f'{out}\n' for out in done))
    return {'scale': deg.scale, 'names': done, 'written': written, 'skipped': skipped}
