"""``basicsr upscale``: super-resolve a photo or a folder of photos with a trained SR network, whole images of any
size in overlapping tiles.

    basicsr upscale -i INPUT -o OUTPUT --model M [--suffix out] [--tile 256] [--tile-pad 32] [--device auto]

M is what trained the network, whichever is at hand: an experiment folder (``experiments/NAME``: its option copy
and latest ``net_g``), an option file (``network_g`` and ``path.pretrain_network_g``), a ``.pth`` listed by the
``models.yml`` beside it, ``MANIFEST.yml:LABEL`` (a row of a manifest), or a row label of the ``models.yml`` files
under ``./model_zoo`` (e.g. ``"(b) Syn-DML"``). Images are read as ``basicsr synthesize`` reads them (gray
replicated, alpha dropped, 16-bit scaled) and written as 8-bit PNG ``OUTPUT/<stem>_<suffix>.png`` (an existing
file of that name is replaced; a gray photo gives a gray PNG). A network trained on Y (one input channel) super-resolves the Y channel; Cb and Cr
are upsampled bicubically. Tiles overlap by ``--tile-pad`` LR pixels on each side, cut off after the network: for
local networks (MSRResNet, VDSR) with a pad beyond their receptive radius the result equals the whole image's.
"""
import argparse
import glob
import os

import cv2
import numpy as np
import torch
from tqdm import tqdm

from dml_basicsr.archs.network_loading import build_network_opt, check_weights_fit, load_network
from dml_basicsr.data.errors import DatasetError
from dml_basicsr.data.image_io import check_image_file, is_image_file, list_images, raw_to_float, read_raw
from dml_basicsr.data.pair_transforms import image_to_tensor
from dml_basicsr.ops.tiled_upscale import upscale_tiled
from dml_basicsr.utils.checkpoint import CheckpointError
from dml_basicsr.utils.devices import torch_device
from dml_basicsr.utils.model_manifest import ManifestError, read_manifest
from dml_basicsr.utils.options import OptionError
from dml_basicsr.utils.output_folder import OutputFolder, OutputFolderError
from dml_basicsr.utils.safe_yaml import read_yaml
from dml_basicsr.visualization.paper_figures import input_channels
from . import UsageError, fail

HELP = 'Super-resolve a photo or a folder of photos with a trained SR network (tiled, any size).'
MODEL_ZOO_MANIFESTS = os.path.join('model_zoo', '*', 'models.yml')


def add_arguments(p):
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = __doc__.split('\n\n', 1)[1]
    p.add_argument('-i', '--input', required=True, help='an image file or a folder of images')
    p.add_argument('-o', '--output', required=True, metavar='DIR', help='folder for the super-resolved PNGs')
    p.add_argument('--model', required=True, metavar='M',
                   help='experiment folder, option file, .pth listed by a models.yml beside it, MANIFEST.yml:LABEL, '
                        'or a row label of ./model_zoo/*/models.yml')
    p.add_argument('--suffix', default='out', help="appended to each output's stem, '' for none (default: out)")
    p.add_argument('--tile', type=int, default=256, metavar='PIXELS',
                   help='LR tile side; 0: whole images at once (default: 256)')
    p.add_argument('--tile-pad', type=int, default=32, metavar='PIXELS',
                   help='LR context on each side of a tile (default: 32)')
    p.add_argument('--device', default='auto', help="'auto' (CUDA when present), 'cpu' or 'cuda' (default: auto)")
    p.add_argument('--no-progress', action='store_true', help='no progress bar')


def manifest_network(manifest, label, rows=None):
    """The network of the row ``label`` of ``manifest`` (its ``rows`` when read already) with its checkpoint's
    weights; OptionError listing the labels if there is no such row."""
    rows = read_manifest(manifest) if rows is None else rows
    row = next((r for r in rows if r['label'] == label), None)
    if row is None:
        raise OptionError(f'{manifest}: no row labelled {label!r} (its labels: {", ".join(r["label"] for r in rows)})')
    net = build_network_opt(row['network_g'], f'{manifest}: {label}: network_g')
    check_weights_fit(net, row['checkpoint'], 'params_ema')
    return net.eval().requires_grad_(False)


def labelled_manifests(label):
    """[(path, rows)] of the ``./model_zoo/*/models.yml`` files that have a row labelled ``label``."""
    manifests = [(path, read_manifest(path)) for path in sorted(glob.glob(MODEL_ZOO_MANIFESTS))]
    return [(path, rows) for path, rows in manifests if any(row['label'] == label for row in rows)]


def load_sr_network(spec):
    """The SR network of ``--model`` (see the module docstring), in eval mode on the CPU."""
    if os.path.exists(spec):
        return load_network(spec)
    manifest, sep, label = spec.partition(':')
    if sep and manifest.endswith(('.yml', '.yaml')) and os.path.isfile(manifest):
        return manifest_network(manifest, label)
    found = labelled_manifests(spec)
    if len(found) == 1:
        manifest, rows = found[0]
        return manifest_network(manifest, spec, rows)
    if found:
        paths = ', '.join(path for path, _ in found)
        raise OptionError(f'--model {spec!r}: a row label in several manifests ({paths}); give '
                          'MANIFEST.yml:LABEL')
    raise OptionError(f'--model {spec!r}: no such file or folder, and no row of {MODEL_ZOO_MANIFESTS} (under '
                      f'{os.getcwd()}) has that label')


def option_weights(yml):
    """The ``path.pretrain_network_g`` of the option file ``yml``, or None where it has none or cannot be read (the
    loading then says why)."""
    try:
        opt = read_yaml(yml, OptionError)
    except (OptionError, OSError):
        return None
    pth = ((opt.get('path') if isinstance(opt, dict) else None) or {}).get('pretrain_network_g')
    return pth if isinstance(pth, str) else None


def model_files(spec):
    """The files (or experiment folder) that loading the model ``spec`` (``--model``, ``--dml``, ...) reads, as far
    as they are known before it is loaded: the path itself, an option file's weights, the ``models.yml`` beside a
    ``.pth``, the manifest of ``MANIFEST.yml:LABEL``."""
    spec = os.fspath(spec)
    if os.path.isfile(spec) and spec.endswith(('.yml', '.yaml')):
        return [spec, option_weights(spec)]
    if os.path.isfile(spec):
        return [spec, os.path.join(os.path.dirname(os.path.abspath(spec)), 'models.yml')]
    if os.path.exists(spec):
        return [spec]
    manifest, sep, _ = spec.partition(':')
    return [manifest] if sep and os.path.isfile(manifest) else []


def network_scale(net, channels, device):
    """The integer scale of ``net`` measured on a small input; OptionError unless it enlarges (a degradation model
    such as DMLNet makes images smaller)."""
    with torch.no_grad():
        out = net(torch.zeros(1, channels, 16, 16, device=device))
    scale = out.shape[-1] / 16
    if scale < 1 or scale != int(scale) or out.shape[-2] != out.shape[-1]:
        raise OptionError(f'--model: not an SR network (a 16x16 input gives {out.shape[-1]}x{out.shape[-2]}); '
                          'basicsr upscale enlarges images')
    return int(scale)


def input_images(path):
    """[(path, stem)] of ``--input``: the file itself, or the images directly inside the folder."""
    if os.path.isfile(path):
        if not is_image_file(path):
            raise DatasetError(f'{path}: not an image file (expected one of png, jpg, bmp, tif, webp)')
        return [(path, os.path.splitext(os.path.basename(path))[0])]
    names = list_images(path)
    if not names:
        raise DatasetError(f'{path}: no image files in it')
    return [(os.path.join(path, name), os.path.splitext(name)[0]) for name in names]


def output_names(images, suffix):
    """{input path: output file name}; DatasetError if two inputs would write the same file (a.png and a.jpg)."""
    names = {path: f'{stem}_{suffix}.png' if suffix else f'{stem}.png' for path, stem in images}
    seen = {}
    for path, name in names.items():
        if name in seen:
            raise DatasetError(f'{seen[name]} and {path} would both be written to {name}: rename one, or upscale '
                               'them into different folders')
        seen[name] = path
    return names


def upscale_image(net, img, scale, channels, tile, tile_pad, device):
    """float BGR (H, W, 3) in [0, 1] -> uint8 BGR (s*H, s*W, 3): the network on RGB, or on Y for a Y network."""
    from basicsr.utils import bgr2ycbcr, ycbcr2bgr

    if channels == 1:
        ycbcr = bgr2ycbcr(img, y_only=False)
        lr = image_to_tensor(ycbcr[:, :, :1])[None].to(device)
    else:
        lr = image_to_tensor(img)[None].to(device)  # RGB
    with torch.no_grad():
        sr = upscale_tiled(net, lr, scale, tile, tile_pad)[0].float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
    if channels == 1:
        h, w = sr.shape[:2]
        chroma = cv2.resize(ycbcr[:, :, 1:], (w, h), interpolation=cv2.INTER_CUBIC)
        out = np.clip(ycbcr2bgr(np.concatenate([sr, chroma], axis=2)), 0, 1)
    else:
        out = sr[:, :, ::-1]
    return np.round(out * 255.).astype(np.uint8)


def run(args):
    if args.tile < 0 or args.tile_pad < 0:
        raise UsageError('--tile and --tile-pad must be >= 0')
    try:
        device = torch_device(args.device, allow_auto=True)
    except ValueError as e:
        raise UsageError(f'--{e}') from None  # the message starts with 'device'
    try:
        images = input_images(args.input)
        names = output_names(images, args.suffix)
        folder = OutputFolder(args.output, [args.input, *(path for path, _ in images), *model_files(args.model)])
        folder.check_targets(names.values())
        for path, _ in images:  # an empty, oversized or truncated image is refused before anything is written
            check_image_file(path)
        net = load_sr_network(args.model).to(device)
        channels = input_channels(net)
        scale = network_scale(net, channels, device)
        for path, _ in tqdm(images, desc='upscale', unit='img', disable=args.no_progress):
            raw = read_raw(path)
            sr = upscale_image(net, raw_to_float(raw), scale, channels, args.tile, args.tile_pad, device)
            folder.write_png(names[path], cv2.cvtColor(sr, cv2.COLOR_BGR2GRAY) if raw.shape[2] == 1 else sr)
    except (DatasetError, OptionError, CheckpointError, ManifestError, OutputFolderError) as e:
        return fail('upscale', e)
    print(f'basicsr upscale: {len(images)} image(s) x{scale} into {args.output}')
    return 0
