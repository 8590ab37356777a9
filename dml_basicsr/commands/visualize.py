"""``basicsr visualize``: the paper's pictures, from trained models and an image.

    basicsr visualize --image IMG --output DIR [--center-crop SIZE] [--dml PATH | --pretrained NAME] [--kpn PATH]
                      [--sr NAME=PATH ...] [--lr IMG] [--hr IMG] [--crop Y,X,SIZE]
                      [--grid 4] [--device cpu]

PATH is a checkpoint (``.pth``: DMLNet and DirectKPN weights are recognised from their tensors,
any other network from the row of a ``models.yml`` beside it that lists it, as in ``model_zoo/``),
an experiment folder (``experiments/<name>``: the option file BasicSR copied there, with the
``--force_yml`` overrides of the recorded command, and ``models/net_g_latest.pth``),
or an option file (``network_g`` and ``path.pretrain_network_g``); for --dml also a shipped model's name, which
--pretrained NAME gives too (e.g. realsr-x4). IMG is an image file or
``embedded:<name>``, a photograph shipped with scikit-image (e.g. ``embedded:chelsea``);
``--center-crop SIZE`` uses only its central SIZE x SIZE.

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

from dml_basicsr.archs.network_loading import load_network
from dml_basicsr.data.embedded import load_embedded
from dml_basicsr.data.errors import DatasetError
from dml_basicsr.degradation.pretrained_models import checkpoint_or_pretrained, pretrained_path
from dml_basicsr.data.image_io import read_image
from dml_basicsr.utils.output_folder import OutputFolder
from dml_basicsr.visualization.paper_figures import FigureError, degradation_figures, sr_crops_figure
from . import fail
from .upscale import model_files

HELP = 'Pictures of a trained degradation (basis, weight maps, per-pixel kernels) and SR crops.'


MAX_GRID = 16  # kernels.png shows grid x grid kernels


def add_arguments(p):
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = __doc__.split('\n\n', 1)[1]
    p.add_argument('--image', required=True, help='HR image for the degradation pictures (file or embedded:<name>)')
    p.add_argument('--output', required=True, metavar='DIR', help='folder for the PNG files')
    p.add_argument('--center-crop', type=int, metavar='SIZE',
                   help='use only the central SIZE x SIZE of --image')
    dml = p.add_mutually_exclusive_group()
    dml.add_argument('--dml', metavar='PATH', help='DML model: .pth, experiment folder, option file or a shipped name')
    dml.add_argument('--pretrained', metavar='NAME', help='a shipped DML model, e.g. realsr-x4 (as --dml NAME)')
    p.add_argument('--kpn', metavar='PATH', help='DirectKPN model, whose kernels are shown beside DML\'s')
    p.add_argument('--sr', action='append', default=[], metavar='NAME=PATH', help='an SR model (repeatable)')
    p.add_argument('--lr', metavar='IMG', help='LR image for the SR crops (default: --image)')
    p.add_argument('--hr', metavar='IMG', help='HR ground truth of --lr, shown beside the SR crops')
    p.add_argument('--crop', metavar='Y,X,SIZE', help='SR crop in LR pixels (default: centred, 64 px)')
    p.add_argument('--grid', type=int, default=4, help='points per side for kernels.png (default: 4)')
    p.add_argument('--device', default='cpu', help="torch device for the SR models (default: cpu)")


def load_image(spec):
    """``embedded:<name>`` or a file -> float32 BGR (H, W, 3) in [0, 1]."""
    try:
        if spec.startswith('embedded:'):
            return load_embedded(spec[len('embedded:'):])
        return read_image(spec)
    except DatasetError as e:
        raise FigureError(str(e)) from None


def center_crop(image, size):
    """The central ``size`` x ``size`` of ``image`` (H, W, C): rows and columns from ((H - size) // 2,
    (W - size) // 2)."""
    height, width = image.shape[:2]
    if size < 1 or size > min(height, width):
        raise FigureError(f'--center-crop {size}: must be 1..{min(height, width)} for the {width}x{height} --image')
    top, left = (height - size) // 2, (width - size) // 2
    return image[top:top + size, left:left + size]


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


def dml_model_path(args):
    """The file or folder of the DML model of ``--dml`` (a path, or a shipped name where no such path exists) or
    ``--pretrained``; None without either. ValueError naming the option and listing the shipped names."""
    if args.pretrained:
        return pretrained_path(args.pretrained)
    if args.dml:
        return checkpoint_or_pretrained(args.dml, '--dml')
    return None


def _degradation_models(args):
    dml = load_network(str(args.dml))
    if not hasattr(dml, 'basis_kernels') or not hasattr(dml, 'predict_weights'):
        raise FigureError(f'--dml {args.dml}: {type(dml).__name__} is not a DML model (no basis kernels)')
    kpn = load_network(args.kpn) if args.kpn else None
    if kpn is not None and not hasattr(kpn, 'kernels_at'):
        raise FigureError(f'--kpn {args.kpn}: {type(kpn).__name__} has no per-pixel kernels')
    return dml, kpn


def _sr_models(entries):
    models = []
    for entry in entries:
        name, sep, path = entry.partition('=')
        if not sep or not name or not path:
            raise FigureError(f'--sr expects NAME=PATH, got {entry!r}')
        models.append((name, load_network(path)))
    return models


def make_figures(args):
    """{file name: uint8 image} for parsed ``args``."""
    if not (args.dml or args.sr):
        raise FigureError('nothing to draw: give --dml or --pretrained (degradation pictures) and/or --sr NAME=PATH '
                          '(SR crops)')
    if args.kpn and not args.dml:
        raise FigureError('--kpn is shown beside a DML model: give --dml or --pretrained too')
    if args.grid < 1:
        raise FigureError(f'--grid must be >= 1, got {args.grid}')
    image = load_image(args.image)
    if args.center_crop is not None:
        image = center_crop(image, args.center_crop)
    figures = {}
    if args.dml:
        dml, kpn = _degradation_models(args)
        most = min(MAX_GRID, min(image.shape[:2]) // dml.kernel_size)
        if args.grid > most:
            raise FigureError(f'--grid {args.grid}: at most {most} points per side fit the {image.shape[1]}x'
                              f'{image.shape[0]} image ({dml.kernel_size}x{dml.kernel_size} kernels, {MAX_GRID} '
                              'at most)')
        figures.update(degradation_figures(dml, image, kpn, args.grid))
    if args.sr:
        models = _sr_models(args.sr)
        lr = load_image(args.lr) if args.lr else image
        hr = load_image(args.hr) if args.hr else None
        figures['sr_crops.png'] = sr_crops_figure(models, lr, parse_crop(args.crop, *lr.shape[:2]), hr, args.device)
    return figures


def input_paths(args):
    """The files this run reads: the images and the models (an embedded image is no file), each model with the
    files loading it reads (:func:`~.upscale.model_files`: an option file's weights, a manifest beside a .pth)."""
    images = [p for p in (args.image, args.lr, args.hr) if p and not p.startswith('embedded:')]
    models = [p for p in (args.dml, args.kpn) if p] + [entry.partition('=')[2] for entry in args.sr]
    return [p for p in images + [f for model in models if model for f in model_files(model)] if p]


def run(args):
    try:
        args.dml = dml_model_path(args)
        folder = OutputFolder(args.output, input_paths(args))
        figures = make_figures(args)
        folder.check_targets(figures)
    except (ValueError, RuntimeError) as e:
        return fail('visualize', e)
    for name, picture in figures.items():
        folder.write_png(name, picture)
    print(f'basicsr visualize: {", ".join(sorted(figures))} in {args.output}')
    return 0
