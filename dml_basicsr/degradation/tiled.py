"""Exact tiled DML degradation: images of any size, in tiles, with the whole image's result."""
import contextlib
import math

import torch

from dml_basicsr.archs.encoder_decoder import EncoderDecoder
from .dml_degradation import weight_net_input


def tile_alignment(scale):
    """Tile origins and context margins are multiples of this: lcm(4, s).

    4 because the weight U-Net max-pools by 2 twice (a crop starting on a multiple of 4 pools to
    the same coarse grids as the whole image), s because LR pixels sit on HR pixels (s*i, s*j).
    """
    return 4 * scale // math.gcd(4, scale)


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


def min_tile_overlap(net):
    """The smallest exact context margin (HR pixels) for ``net``: a multiple of lcm(4, s) covering
    both the weight CNN's receptive field and the kernel radius (the per-pixel kernel is applied to
    the HR itself, so the output depends on ``max`` of the two reaches, not their sum)."""
    reach = max(net.weight_net.receptive_radius(), net.kernel_size // 2)
    return _round_up(reach, tile_alignment(net.scale))


def check_tile_overlap(net, tile_overlap, source='this model'):
    """Raise ValueError if ``tile_overlap`` (rounded up to lcm(4, s)) is below :func:`min_tile_overlap`."""
    need = min_tile_overlap(net)
    if _round_up(int(tile_overlap), tile_alignment(net.scale)) < need:
        raise ValueError(f'tile_overlap {tile_overlap} is too small for exact tiling with {source} '
                         f'(scale {net.scale}, kernel size {net.kernel_size}): use at least {need}')


# Memory of the weight U-Net's forward per HR pixel and feature channel (measured: about 1 KB a pixel with 32
# features on the CPU, float32), with a margin.
BYTES_PER_PIXEL_AND_FEATURE = 40
UNKNOWN_FREE_BYTES = 2 << 30


def free_memory(device):
    """Bytes ``device`` can still allocate: CUDA's free memory, or the system's available memory (Linux); 2 GiB
    when it cannot tell."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open('/proc/meminfo') as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith('MemAvailable:'))
    except (OSError, StopIteration, ValueError, IndexError):
        return UNKNOWN_FREE_BYTES


def auto_tile(net, height, width, device, free=None):
    """The tile for :func:`degrade_tiled` of a ``height`` x ``width`` image: 0 (the whole image at once, the
    fastest: tiles recompute their context and run many small convolutions) when its forward takes at most half of
    the ``free`` memory (default: :func:`free_memory` of ``device``), else the largest aligned tile whose crop
    (tile plus context on each side) does."""
    convs = [m for m in net.weight_net.modules() if isinstance(m, torch.nn.Conv2d)] if isinstance(
        getattr(net, 'weight_net', None), EncoderDecoder) else []
    if not convs:
        return 0  # no weight CNN to tile (a fixed kernel): the operator alone is cheap
    per_pixel = BYTES_PER_PIXEL_AND_FEATURE * max(c.out_channels for c in convs)
    budget = (free_memory(device) if free is None else free) / 2
    if height * width * per_pixel <= budget:
        return 0
    align, margin = tile_alignment(net.scale), min_tile_overlap(net)
    side = int(math.sqrt(budget / per_pixel)) - 2 * margin
    return max(align, side // align * align)


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
    ``y0`` and ``m`` multiples of lcm(4, s) is pooled on the image's own grids
    (:meth:`EncoderDecoder.forward_crop`) and sampled on its LR grid; the outputs within ``m`` of a
    crop side inside the image are thrown away, and those at the image sides see the same padding
    as the whole image does.
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
    check_tile_overlap(net, tile_overlap)
    align = tile_alignment(s)
    tile = _round_up(int(tile), align)
    margin = _round_up(int(tile_overlap), align)
    deg.ready_net(device)
    dtype = deg.net_dtype_device()[0]
    out = torch.empty(b, c, -(-h // s), -(-w // s), dtype=hr.dtype, device=hr.device)
    for y0 in range(0, h, tile):
        y1 = min(y0 + tile, h)
        cy0, cy1 = max(0, y0 - margin), min(h, y1 + margin)
        for x0 in range(0, w, tile):
            x1 = min(x0 + tile, w)
            cx0, cx1 = max(0, x0 - margin), min(w, x1 + margin)
            crop = hr[:, :, cy0:cy1, cx0:cx1].to(device, dtype)
            # the crop's weights at its HR pixels (s*k, s*l): the whole image's (cy0 + s*k, cx0 + s*l)
            lr = net.degrade(crop, weight_net_input(net, crop), tile_of=((cy0, cx0), (h, w)))
            # LR rows i with s*i in [y0, y1): [y0/s, ceil(y1/s)); the crop's row k is LR row cy0/s + k.
            i0, i1, j0, j1 = y0 // s, -(-y1 // s), x0 // s, -(-x1 // s)
            out[:, :, i0:i1, j0:j1] = lr[:, :, i0 - cy0 // s:i1 - cy0 // s, j0 - cx0 // s:j1 - cx0 // s].to(hr.device)
    return out
