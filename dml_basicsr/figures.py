"""``basicsr visualize``: the paper's pictures, from trained models and an image.

    basicsr visualize --image IMG --output DIR [--dml PATH] [--kpn PATH]
                      [--sr NAME=PATH ...] [--lr IMG] [--hr IMG] [--crop Y,X,SIZE]
                      [--grid 4] [--device cpu]

PATH is a checkpoint (``.pth``: DMLNet and DirectKPN weights are recognised from their tensors),
an experiment folder (``experiments/<name>``: the option file BasicSR copied there, with the
``--force_yml`` overrides of the recorded command, and ``models/net_g_latest.pth``),
or an option file (``network_g`` and ``path.pretrain_network_g``). IMG is an image file or
``embedded:<name>``, a photograph shipped with scikit-image (e.g. ``embedded:chelsea``).

Written to DIR (PNG, 8 bit):
    basis.png          the DML basis kernels, normalised, each min-max scaled (paper Fig. 2)
    weights.png        the DML weight maps of the HR image IMG, 0 black .. 1 white (Fig. 3)
    weights_stretched.png  the same, each map min-max scaled on its own
    kernels.png        the per-pixel kernels at GRID x GRID points of IMG, DML rows above
                       DirectKPN rows when --kpn is given, each pair on one scale (Fig. 4)
    kernel_points.png  IMG with those points marked
    sr_crops.png       one crop of the LR image (--lr, default IMG): the LR (nearest-neighbour
                       enlarged), every --sr model's output and the HR (--hr) side by side (Fig. 5/6)
"""
import argparse
import copy
import glob
import math
import os
import re
import shlex
import sys

import cv2
import numpy as np
import torch

from dml_basicsr.data.embedded import load_embedded
from dml_basicsr.data.errors import DatasetError
from dml_basicsr.data.image_io import convert_color, read_image
from dml_basicsr.degradation import dmlnet_from_state_dict
from dml_basicsr.ops import center_pad
from dml_basicsr.preflight import load_options
from dml_basicsr.visualize import kernel_comparison, kernel_grid, weight_map_grid

CONTEXT = 16  # LR pixels of context around an SR crop, so that its borders match the full image's


class FigureError(ValueError):
    """A model or image given to ``basicsr visualize`` cannot be used; the message names it."""


# ----------------------------------------------------------------------------- loading

def load_image(spec):
    """``embedded:<name>`` or a file -> float32 BGR (H, W, 3) in [0, 1]."""
    try:
        if spec.startswith('embedded:'):
            return load_embedded(spec[len('embedded:'):])
        return read_image(spec)
    except DatasetError as e:
        raise FigureError(str(e)) from None


def _state_dict(pth):
    if not os.path.isfile(pth):
        raise FigureError(f'{pth}: checkpoint not found')
    ckpt = torch.load(pth, map_location='cpu', weights_only=True)
    for key in ('params_ema', 'params'):
        if isinstance(ckpt, dict) and key in ckpt:
            return ckpt[key]
    return ckpt


def _net_from_weights(pth):
    """A DMLNet or DirectKPN rebuilt from the tensor shapes of a checkpoint."""
    from dml_basicsr.archs import DirectKPN

    state = _state_dict(pth)
    if 'basis' in state:
        return dmlnet_from_state_dict(state)
    last = state.get('kernel_net.conv_last.weight')
    if last is not None:
        k = math.isqrt(last.shape[0])
        net = DirectKPN(num_in_ch=state['kernel_net.enc1.0.weight'].shape[1], kernel_size=k,
                        num_feat=state['kernel_net.enc1.0.weight'].shape[0])
        net.load_state_dict(state)
        return net
    raise FigureError(f'{pth}: cannot tell the architecture from the weights alone (only DMLNet and DirectKPN '
                      'are recognised); give the experiment folder or the option file instead')


def _latest_weights(models_dir):
    latest = os.path.join(models_dir, 'net_g_latest.pth')
    if os.path.isfile(latest):
        return latest
    numbered = [(int(m[1]), p) for p in glob.glob(os.path.join(models_dir, 'net_g_*.pth'))
                for m in [re.search(r'net_g_(\d+)\.pth$', p)] if m]
    return max(numbered)[1] if numbered else None


def recorded_overrides(yml):
    """The ``--force_yml`` entries of the command that BasicSR recorded atop an experiment's option copy."""
    with open(yml) as f:
        head = [f.readline() for _ in range(3)]
    if not head[1].startswith('# CMD:'):
        return []
    args = shlex.split(head[2].lstrip('# '))
    if '--force_yml' not in args:
        return []
    entries = []
    for arg in args[args.index('--force_yml') + 1:]:
        if arg.startswith('-'):
            break
        entries.append(arg)
    return entries


def _net_from_options(yml, pth=None, force_yml=None):
    from basicsr.archs import build_network

    try:
        opt = load_options(yml, force_yml)
    except DatasetError as e:
        raise FigureError(str(e)) from None
    if not isinstance(opt.get('network_g'), dict):
        raise FigureError(f'{yml}: no network_g section')
    pth = pth or (opt.get('path') or {}).get('pretrain_network_g')
    if not pth:
        raise FigureError(f'{yml}: path.pretrain_network_g is not set: which weights should be shown?')
    net = build_network(copy.deepcopy(opt['network_g']))
    net.load_state_dict(_state_dict(pth))
    return net


def load_network(path):
    """A model in eval mode from a checkpoint, an experiment folder or an option file (see module doc)."""
    if os.path.isdir(path):
        ymls = sorted(glob.glob(os.path.join(path, '*.yml')))
        pth = _latest_weights(os.path.join(path, 'models'))
        if len(ymls) != 1 or pth is None:
            raise FigureError(f'{path}: not an experiment folder (expected one option .yml file and '
                              f'models/net_g_*.pth; found {len(ymls)} .yml, {"a" if pth else "no"} checkpoint)')
        net = _net_from_options(ymls[0], pth, recorded_overrides(ymls[0]))
    elif path.endswith(('.yml', '.yaml')):
        if not os.path.isfile(path):
            raise FigureError(f'{path}: option file not found')
        net = _net_from_options(path)
    elif path.endswith('.pth'):
        net = _net_from_weights(path)
    else:
        raise FigureError(f'{path}: expected a .pth checkpoint, an experiment folder or a .yml option file')
    return net.eval().requires_grad_(False)


def input_channels(net):
    """``net.num_in_ch``, or the input channels of its first convolution."""
    if hasattr(net, 'num_in_ch'):
        return net.num_in_ch
    first = next((m for m in net.modules() if isinstance(m, torch.nn.Conv2d)), None)
    return first.in_channels if first is not None else 3


def image_tensor(img, num_in_ch, device='cpu'):
    """float32 BGR (H, W, 3) -> (1, C, H, W): Y for 1-channel models, RGB for 3-channel ones."""
    if num_in_ch == 1:
        arr = convert_color(img, 'y')
    else:
        arr = img[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float()[None].to(device)


# ----------------------------------------------------------------------------- pictures

def grid_points(height, width, grid, margin):
    """(grid*grid, 2) long tensor of (y, x), row-major, evenly spread inside ``margin`` of the border."""
    ys = np.linspace(margin, height - 1 - margin, grid).round().astype(int)
    xs = np.linspace(margin, width - 1 - margin, grid).round().astype(int)
    return torch.tensor([(y, x) for y in ys for x in xs], dtype=torch.long)


def mark_points(img, points, radius=4):
    """uint8 BGR copy of ``img`` (float BGR in [0, 1]) with a red circle at each (y, x)."""
    canvas = np.ascontiguousarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    for y, x in points.tolist():
        cv2.circle(canvas, (x, y), radius, (0, 0, 255), 2)
    return canvas


def degradation_figures(dml, hr_img, kpn=None, grid=4):
    """{file name: uint8 image} of a DML model (and optionally DirectKPN) on one HR image."""
    figures = {}
    with torch.no_grad():
        figures['basis.png'] = kernel_grid(dml.basis_kernels())
        hr = image_tensor(hr_img, dml.num_in_ch)
        weights = dml.predict_weights(hr)[0]
        figures['weights.png'] = weight_map_grid(weights)
        figures['weights_stretched.png'] = weight_map_grid(weights, stretch=True)
        points = grid_points(hr.shape[-2], hr.shape[-1], grid, margin=dml.kernel_size // 2)
        kernels = dml.kernels_at(hr, points)[0]
        if kpn is not None:
            other = kpn.kernels_at(image_tensor(hr_img, kpn.num_in_ch), points)[0]
            figures['kernels.png'] = kernel_comparison(_pad_to(kernels, other), _pad_to(other, kernels))
        else:
            figures['kernels.png'] = kernel_grid(kernels, cols=grid, zoom=6)
    figures['kernel_points.png'] = mark_points(hr_img, points)
    return figures


def _pad_to(kernels, other):
    return center_pad(kernels, max(kernels.shape[-1], other.shape[-1]))


def parse_crop(text, height, width):
    """'Y,X,SIZE' (LR pixels) or None (a centred square of side min(64, H, W)) -> (y, x, size)."""
    if text is None:
        size = min(64, height, width)
        return (height - size) // 2, (width - size) // 2, size
    try:
        y, x, size = (int(v) for v in text.split(','))
    except ValueError:
        raise FigureError(f'--crop expects Y,X,SIZE (three integers), got {text!r}') from None
    if size < 1 or y < 0 or x < 0 or y + size > height or x + size > width:
        raise FigureError(f'--crop {text}: the square must lie inside the LR image of {height}x{width}')
    return y, x, size


def _to_bgr_uint8(chw):
    """(C, H, W) tensor in [0, 1], C = 1 (gray) or 3 (RGB) -> uint8 BGR (H, W, 3)."""
    arr = chw.clamp(0, 1).mul(255).round().byte().cpu().numpy().transpose(1, 2, 0)
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else np.ascontiguousarray(arr[:, :, ::-1])


def sr_crop(net, lr_img, crop, device='cpu'):
    """The SR output of ``net`` for one LR crop (y, x, size), computed with context; (C, s*size, s*size)."""
    y, x, size = crop
    h, w = lr_img.shape[:2]
    y0, x0 = max(0, y - CONTEXT), max(0, x - CONTEXT)
    y1, x1 = min(h, y + size + CONTEXT), min(w, x + size + CONTEXT)
    lr = image_tensor(lr_img[y0:y1, x0:x1], input_channels(net), device)
    with torch.no_grad():
        out = net.to(device)(lr)[0]
    s = out.shape[-1] // lr.shape[-1]
    if s < 1 or out.shape[-1] != s * lr.shape[-1] or out.shape[-2] != s * lr.shape[-2]:
        raise FigureError(f'the SR model maps {tuple(lr.shape[-2:])} to {tuple(out.shape[-2:])}: not an integer scale')
    return out[:, (y - y0) * s:(y - y0 + size) * s, (x - x0) * s:(x - x0 + size) * s]


def labelled_row(tiles, labels, gap=4, label_height=22):
    """Equal-size uint8 BGR tiles side by side, each with its label underneath, on white."""
    h, w = tiles[0].shape[:2]
    canvas = np.full((h + label_height, len(tiles) * (w + gap) - gap, 3), 255, np.uint8)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        x = i * (w + gap)
        canvas[:h, x:x + w] = tile
        cv2.putText(canvas, label[:max(1, w // 8)], (x + 2, h + label_height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def sr_crops_figure(models, lr_img, crop, hr_img=None, device='cpu'):
    """Fig. 5/6: the LR crop (enlarged), each model's SR crop and the HR crop, labelled.

    Args:
        models: [(name, net)] of SR models with one scale s.
        crop: (y, x, size) in LR pixels.
    """
    outs = [(name, sr_crop(net, lr_img, crop, device)) for name, net in models]
    sides = {out.shape[-1] for _, out in outs}
    if len(sides) != 1:
        raise FigureError('the SR models do not share one scale: ' +
                          ', '.join(f'{name} gives {out.shape[-1]} px' for name, out in outs))
    side = sides.pop()
    y, x, size = crop
    s = side // size
    tiles = [cv2.resize(np.clip(lr_img[y:y + size, x:x + size] * 255 + 0.5, 0, 255).astype(np.uint8),
                        (side, side), interpolation=cv2.INTER_NEAREST)]
    tiles += [_to_bgr_uint8(out) for _, out in outs]
    labels = ['LR'] + [name for name, _ in outs]
    if hr_img is not None:
        hr = hr_img[y * s:(y + size) * s, x * s:(x + size) * s]
        if hr.shape[:2] != (side, side):
            raise FigureError(f'--hr: the crop x{s} falls outside the HR image of {hr_img.shape[0]}x{hr_img.shape[1]}')
        tiles.append(np.clip(hr * 255 + 0.5, 0, 255).astype(np.uint8))
        labels.append('HR')
    return labelled_row(tiles, labels)


# ----------------------------------------------------------------------------- command line

def build_parser():
    p = argparse.ArgumentParser(prog='basicsr visualize', formatter_class=argparse.RawDescriptionHelpFormatter,
                                description=__doc__.split('\n\n', 1)[1])
    p.add_argument('--image', required=True, help='HR image for the degradation pictures (file or embedded:<name>)')
    p.add_argument('--output', required=True, metavar='DIR', help='folder for the PNG files')
    p.add_argument('--dml', metavar='PATH', help='DML model: .pth, experiment folder or option file')
    p.add_argument('--kpn', metavar='PATH', help='DirectKPN model, whose kernels are shown beside DML\'s')
    p.add_argument('--sr', action='append', default=[], metavar='NAME=PATH', help='an SR model (repeatable)')
    p.add_argument('--lr', metavar='IMG', help='LR image for the SR crops (default: --image)')
    p.add_argument('--hr', metavar='IMG', help='HR ground truth of --lr, shown beside the SR crops')
    p.add_argument('--crop', metavar='Y,X,SIZE', help='SR crop in LR pixels (default: centred, 64 px)')
    p.add_argument('--grid', type=int, default=4, help='points per side for kernels.png (default: 4)')
    p.add_argument('--device', default='cpu', help="torch device for the SR models (default: cpu)")
    return p


def make_figures(args):
    """{file name: uint8 image} for parsed ``args``."""
    if not (args.dml or args.sr):
        raise FigureError('nothing to draw: give --dml (degradation pictures) and/or --sr NAME=PATH (SR crops)')
    if args.kpn and not args.dml:
        raise FigureError('--kpn is shown beside a DML model: give --dml too')
    if args.grid < 1:
        raise FigureError(f'--grid must be >= 1, got {args.grid}')
    image = load_image(args.image)
    figures = {}
    if args.dml:
        dml = load_network(args.dml)
        if not hasattr(dml, 'basis_kernels') or not hasattr(dml, 'predict_weights'):
            raise FigureError(f'--dml {args.dml}: {type(dml).__name__} is not a DML model (no basis kernels)')
        kpn = load_network(args.kpn) if args.kpn else None
        if kpn is not None and not hasattr(kpn, 'kernels_at'):
            raise FigureError(f'--kpn {args.kpn}: {type(kpn).__name__} has no per-pixel kernels')
        figures.update(degradation_figures(dml, image, kpn, args.grid))
    if args.sr:
        models = []
        for entry in args.sr:
            name, sep, path = entry.partition('=')
            if not sep or not name or not path:
                raise FigureError(f'--sr expects NAME=PATH, got {entry!r}')
            models.append((name, load_network(path)))
        lr = load_image(args.lr) if args.lr else image
        hr = load_image(args.hr) if args.hr else None
        crop = parse_crop(args.crop, *lr.shape[:2])
        figures['sr_crops.png'] = sr_crops_figure(models, lr, crop, hr, args.device)
    return figures


def main(argv=None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        figures = make_figures(args)
    except (FigureError, ValueError, RuntimeError) as e:
        print(f'basicsr visualize: error: {e}', file=sys.stderr)
        return 2
    os.makedirs(args.output, exist_ok=True)
    for name, picture in figures.items():
        if not cv2.imwrite(os.path.join(args.output, name), picture):
            print(f'basicsr visualize: error: cannot write {os.path.join(args.output, name)}', file=sys.stderr)
            return 2
    print(f'basicsr visualize: {", ".join(sorted(figures))} in {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
