"""Offline Syn-DML dataset synthesis: a folder of HR images -> HR/LR pairs made by a trained DML model.

    from dml_basicsr.synthesize import synthesize_folder
    synthesize_folder('datasets/DIV2K/HR', 'datasets/SynDML_x4', 'experiments/.../net_g_latest.pth')

writes ``<output>/HR/<stem>.png`` (the HR, cropped top-left to a multiple of the scale s, 8-bit),
``<output>/LR/<stem>.png`` (the DML LR plus AWGN, exactly HR/s, 8-bit) and ``<output>/meta_info.txt``
(one file name per line), which BasicSR's ``PairedImageDataset`` reads as is with
``meta_info_file: <output>/meta_info.txt`` and ``filename_tmpl: '{}'``.

* Resumable: a pair whose two files exist is skipped; files are written under a temporary name in
  the same folder and renamed, so an interrupt never leaves a partial file under a final name;
  ``meta_info.txt`` is (atomically) rewritten when every image is done.
* Deterministic: the noise of an image comes from a generator seeded by ``(seed, crc32(file name))``,
  not by the processing order, so resumed and fresh runs write identical files.
* Large images are degraded tile by tile (:func:`degrade_tiled`); the stitched noise-free LR equals
  ``DMLDegradation.degrade_clean`` on the whole image up to float rounding.
"""
import contextlib
import math
import os
import zlib

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from dml_basicsr.archs.encoder_decoder import EncoderDecoder
from dml_basicsr.data.errors import DatasetError
from dml_basicsr.data.image_io import convert_color, list_images, read_image
from dml_basicsr.degradation import DMLDegradation
from dml_basicsr.ops import apply_basis_kernels, rgb_to_y

TMP_PREFIX = '.synth-'
TMP_SUFFIX = '.tmp'
META_INFO = 'meta_info.txt'


# ----------------------------------------------------------------------------------------------
# Tiled degradation
# ----------------------------------------------------------------------------------------------

def tile_alignment(scale):
    """Tile origins and context margins are multiples of this: lcm(4, s).

    4 because the weight U-Net max-pools by 2 twice (a crop starting on a multiple of 4 pools to
    the same coarse grids as the whole image), s because LR pixels sit on HR pixels (s*i, s*j).
    """
    return 4 * scale // math.gcd(4, scale)


def _cnn_reach(last_kernel_size):
    """A bound on the one-sided receptive field (HR pixels) of :class:`EncoderDecoder`.

    Walks back from the output: a 3x3 conv adds 1 pixel at its level; going from a fine level
    back to a coarse one through the bilinear upsampling needs ``ceil(r/2) + 2`` coarse pixels
    (half the reach, the second interpolation tap, and up to half a pixel of drift when the
    image side is not a multiple of 4); a max-pool by 2 maps a coarse reach r to ``2r + 1``.
    """
    r1 = last_kernel_size // 2 + 2                      # conv_last, dec1 (level 1)
    via_x1 = r1 + 2                                     # enc1
    r2 = math.ceil(r1 / 2) + 2 + 2                      # up from level 2, dec2
    via_x2 = 2 * (r2 + 2) + 1 + 2                       # enc2, pool, enc1
    r3 = math.ceil(r2 / 2) + 2 + 2                      # up from level 3, enc3
    via_x3 = 2 * (2 * r3 + 1 + 2) + 1 + 2               # pool, enc2, pool, enc1
    return max(via_x1, via_x2, via_x3)


def min_tile_overlap(net):
    """The smallest exact context margin (HR pixels) for ``net``: a multiple of lcm(4, s) covering
    both the weight CNN's receptive field and the kernel radius (the per-pixel kernel is applied to
    the HR itself, so the output depends on ``max`` of the two reaches, not their sum)."""
    last = net.weight_net.conv_last.kernel_size[0]
    reach = max(_cnn_reach(last), net.kernel_size // 2)
    align = tile_alignment(net.scale)
    return -(-reach // align) * align


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


def _upsample_axis(x, dim, fine_origin, fine_len, full_fine, full_coarse, coarse_origin):
    """Linear interpolation along ``dim`` with the *whole image's* coordinate mapping.

    ``F.interpolate(size=...)`` maps output pixel D to ``(D + 0.5) * in / out - 0.5`` with in/out
    the whole image's level sizes (not exactly 1/2 when a side is not a multiple of 4), so a crop
    has to use the global mapping, then index its own coarse features.
    """
    scale = torch.tensor(full_coarse, dtype=torch.float32) / torch.tensor(full_fine, dtype=torch.float32)
    dst = torch.arange(fine_origin, fine_origin + fine_len, dtype=torch.float32)
    src = (scale * (dst + 0.5) - 0.5).clamp_min(0)
    i0 = src.floor().long()
    lam = (src - i0.to(src.dtype)).clamp(0, 1)
    i1 = torch.where(i0 < full_coarse - 1, i0 + 1, i0)
    last = x.shape[dim] - 1
    i0 = (i0 - coarse_origin).clamp(0, last).to(x.device)
    i1 = (i1 - coarse_origin).clamp(0, last).to(x.device)
    shape = [1] * x.dim()
    shape[dim] = fine_len
    lam = lam.to(device=x.device, dtype=x.dtype).view(shape)
    return x.index_select(dim, i0) * (1 - lam) + x.index_select(dim, i1) * lam


def _up_cat_global(x, skip, origin, full_fine, full_coarse):
    """Bilinear upsampling of a crop's coarse features ``x`` to ``skip``'s size, global mapping."""
    (oy, ox), (fh, fw), (ch, cw) = origin, full_fine, full_coarse
    x = _upsample_axis(x, 2, oy, skip.shape[2], fh, ch, oy // 2)
    x = _upsample_axis(x, 3, ox, skip.shape[3], fw, cw, ox // 2)
    return torch.cat([x, skip], dim=1)


def _weight_net_crop(wn, x, origin, full_size):
    """``EncoderDecoder.forward`` on a crop at ``origin`` (multiples of 4) of an image of ``full_size``.

    Equal to the whole image's output on the crop, except near the crop sides that are inside
    the image (zero padding there stands in for the missing context).
    """
    h1, w1 = full_size
    h2, w2 = h1 // 2, w1 // 2
    h3, w3 = h2 // 2, w2 // 2
    oy, ox = origin
    x1 = wn.enc1(x)
    x2 = wn.enc2(F.max_pool2d(x1, 2))
    x3 = wn.enc3(F.max_pool2d(x2, 2))
    d2 = wn.dec2(_up_cat_global(x3, x2, (oy // 2, ox // 2), (h2, w2), (h3, w3)))
    d1 = wn.dec1(_up_cat_global(d2, x1, (oy, ox), (h1, w1), (h2, w2)))
    return wn.conv_last(d1)


def _net_input(net, hr):
    channels = hr.shape[1]
    if channels == net.num_in_ch:
        return hr
    if channels == 3 and net.num_in_ch == 1:
        return rgb_to_y(hr)
    raise ValueError(f'input has {channels} channels; the model takes {net.num_in_ch}'
                     f'{" (or 3: RGB through its Y weights)" if net.num_in_ch == 1 else ""}')


def _tile_starts(size, tile):
    return list(range(0, size, tile))


@contextlib.contextmanager
def _full_fp32(device):
    """No TF32 in cuDNN convolutions (PyTorch's default allows it): data synthesis wants float32."""
    if device.type != 'cuda':
        yield
        return
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


@torch.no_grad()
def degrade_tiled(deg, hr, tile=512, tile_overlap=64, device=None):
    """Noise-free DML LR of ``hr``, computed over tiles; equals ``deg.degrade_clean(hr)``.

    Args:
        deg: a :class:`DMLDegradation` (its net must use :class:`EncoderDecoder` weights).
        hr: (B, C, H, W) tensor in [0, 1] (kept where it is; crops move to ``device``).
        tile: core tile side in HR pixels, rounded up to a multiple of lcm(4, s); 0/None: no tiling.
        tile_overlap: context on each side of a tile, rounded up to a multiple of lcm(4, s); must
            be at least :func:`min_tile_overlap` (raises ValueError otherwise).
        device: where to compute (default: ``hr``'s device).

    Returns:
        (B, C, ceil(H/s), ceil(W/s)) float tensor on ``hr``'s device.

    Each tile keeps only its core: a crop ``[y0 - m, y0 + tile + m)`` (clipped to the image) with
    ``y0`` and ``m`` multiples of lcm(4, s) is pooled on the image's own grids and sampled on its
    LR grid; the outputs within ``m`` of a crop side inside the image (zero/reflect padding there)
    are thrown away, and those at the image sides see the same padding as the whole image does.
    The decoder's upsampling uses the whole image's coordinate mapping.
    """
    device = torch.device(device) if device is not None else hr.device
    with _full_fp32(device):
        return _degrade_tiled(deg, hr, tile, tile_overlap, device)


def _degrade_tiled(deg, hr, tile, tile_overlap, device):
    net = deg.net
    b, c, h, w = hr.shape
    s = net.scale
    if not tile or (h <= tile and w <= tile) or not isinstance(net.weight_net, EncoderDecoder):
        return deg.degrade_clean(hr.to(device)).to(hr.device)
    align = tile_alignment(s)
    tile = _round_up(int(tile), align)
    margin = _round_up(int(tile_overlap), align)
    need = min_tile_overlap(net)
    if margin < need:
        raise ValueError(f'tile_overlap {tile_overlap} is too small for exact tiling with this model '
                         f'(scale {s}, kernel size {net.kernel_size}): use at least {need}')
    if next(net.parameters()).device != device:
        net.to(device)
    basis = net.basis_kernels()
    out = torch.empty(b, c, -(-h // s), -(-w // s), dtype=hr.dtype, device=hr.device)
    for y0 in _tile_starts(h, tile):
        y1 = min(y0 + tile, h)
        cy0, cy1 = max(0, y0 - margin), min(h, y1 + margin)
        for x0 in _tile_starts(w, tile):
            x1 = min(x0 + tile, w)
            cx0, cx1 = max(0, x0 - margin), min(w, x1 + margin)
            crop = hr[:, :, cy0:cy1, cx0:cx1].to(device)
            weights = torch.sigmoid(_weight_net_crop(net.weight_net, _net_input(net, crop), (cy0, cx0), (h, w)))
            lr = apply_basis_kernels(crop, basis, weights, s)
            # LR rows i with s*i in [y0, y1): [y0/s, ceil(y1/s)); the crop's row k is LR row cy0/s + k.
            i0, i1, j0, j1 = y0 // s, -(-y1 // s), x0 // s, -(-x1 // s)
            out[:, :, i0:i1, j0:j1] = lr[:, :, i0 - cy0 // s:i1 - cy0 // s, j0 - cx0 // s:j1 - cx0 // s].to(hr.device)
    return out


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------

def _tmp_path(path):
    folder, base = os.path.split(path)
    return os.path.join(folder, f'{TMP_PREFIX}{base}.{os.getpid()}{TMP_SUFFIX}')


def _write_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary file in the same folder + os.replace."""
    tmp = _tmp_path(path)
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def _write_png_atomic(path, img):
    ok, buf = cv2.imencode('.png', img)
    if not ok:
        raise OSError(f'{path}: PNG encoding failed')
    _write_atomic(path, buf.tobytes())


def _remove_stale_tmp(folder):
    """Remove temporary files an interrupted run left (they never carry a final name)."""
    for name in os.listdir(folder):
        if name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX):
            try:
                os.remove(os.path.join(folder, name))
            except OSError:
                pass


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


def _load_degradation(checkpoint, noise_sigma):
    try:
        return DMLDegradation.from_checkpoint(checkpoint, noise_sigma=noise_sigma)
    except ValueError as e:
        if str(checkpoint) in str(e):
            raise
        raise ValueError(f'{checkpoint}: {e}') from e
    except FileNotFoundError as e:
        raise ValueError(f'{checkpoint}: checkpoint not found') from e
    except Exception as e:  # noqa: BLE001  (torch.load fails in many ways on a file that is not a checkpoint)
        raise ValueError(f'{checkpoint}: cannot load a DMLNet checkpoint ({type(e).__name__}: {e})') from e


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


def _sigma(noise_sigma, rng):
    if isinstance(noise_sigma, (tuple, list)):
        low, high = noise_sigma
        return float(rng.uniform(low, high))
    return float(noise_sigma or 0.)


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
    sigma = _sigma(noise_sigma, rng)
    if sigma:
        lr = lr + np.float32(sigma / 255.) * rng.standard_normal(lr.shape, dtype=np.float32)
    return hr8, _to_uint8_hwc(lr)


def synthesize_folder(input_dir, output_dir, checkpoint, noise_sigma=5.0, seed=0, tile=512, tile_overlap=64,
                      device='cpu', color=None, progress=True):
    """Make a Syn-DML paired dataset from a folder of HR images (see the module docstring).

    Args:
        input_dir: folder of HR images (png/jpg/bmp/tif/webp; gray, RGBA and 16-bit are read).
        output_dir: gets ``HR/``, ``LR/`` and ``meta_info.txt``.
        checkpoint: a DMLNet ``.pth`` (``{'params': state_dict}`` as ``basicsr train`` saves).
        noise_sigma: AWGN sigma on the 0-255 scale; 0 disables; a ``(low, high)`` pair draws one per image.
        seed: non-negative int; an image's noise is seeded by ``(seed, crc32(its file name))``.
        tile: HR tile side (rounded up to a multiple of lcm(4, s)); 0/None degrades whole images.
        tile_overlap: context margin of a tile (rounded up likewise; at least :func:`min_tile_overlap`).
        device: 'cpu' or 'cuda' (the noise is drawn on the CPU, so it does not depend on it).
        color: None/'rgb' keeps the colour image; 'y' writes BasicSR's Y channel (1-channel PNGs).
        progress: show a tqdm progress bar.

    Returns:
        dict with ``scale``, ``names`` (output file names, sorted), ``written`` and ``skipped`` counts.
    """
    names = list_images(input_dir)
    if not names:
        raise DatasetError(f'{input_dir}: no image files found')
    outputs = _output_names(input_dir, names)
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
    deg = _load_degradation(checkpoint, noise_sigma)
    if color == 'y' and deg.net.num_in_ch != 1:
        raise ValueError(f"color='y' needs a Y model (num_in_ch 1); {checkpoint} takes {deg.net.num_in_ch} channels")
    need = min_tile_overlap(deg.net)
    if tile and _round_up(int(tile_overlap), tile_alignment(deg.scale)) < need:
        raise ValueError(f'tile_overlap {tile_overlap} is too small for exact tiling with {checkpoint} '
                         f'(scale {deg.scale}, kernel size {deg.net.kernel_size}): use at least {need}')
    deg.net.to(device)

    hr_dir, lr_dir = os.path.join(output_dir, 'HR'), os.path.join(output_dir, 'LR')
    os.makedirs(hr_dir, exist_ok=True)
    os.makedirs(lr_dir, exist_ok=True)
    _remove_stale_tmp(hr_dir)
    _remove_stale_tmp(lr_dir)

    written = skipped = 0
    bar = tqdm(names, desc='synthesize', unit='img', disable=not progress)
    for name in bar:
        out = outputs[name]
        hr_path, lr_path = os.path.join(hr_dir, out), os.path.join(lr_dir, out)
        if os.path.isfile(hr_path) and os.path.isfile(lr_path):
            skipped += 1
            bar.set_postfix(written=written, skipped=skipped)
            continue
        hr8, lr8 = synthesize_image(deg, os.path.join(input_dir, name), name, noise_sigma, seed, tile,
                                    tile_overlap, device, color)
        _write_png_atomic(hr_path, hr8)
        _write_png_atomic(lr_path, lr8)
        written += 1
        bar.set_postfix(written=written, skipped=skipped)
    bar.close()

    done = sorted(out for out in outputs.values()
                  if os.path.isfile(os.path.join(hr_dir, out)) and os.path.isfile(os.path.join(lr_dir, out)))
    _write_atomic(os.path.join(output_dir, META_INFO), ''.join(f'{out}\n' for out in done).encode('utf-8'))
    return {'scale': deg.scale, 'names': done, 'written': written, 'skipped': skipped}
