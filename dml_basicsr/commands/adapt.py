"""``basicsr adapt``: a shipped or trained DML degradation fine-tuned to a new camera from a few aligned pairs.

    basicsr adapt --pretrained realsr-x4 --pairs my_camera/ --output my_camera_x4/
    basicsr adapt --checkpoint experiments/X/models/net_g_latest.pth --pairs my_camera/ --output OUT [--auto_resume]
"""
import argparse
import csv
import os
import shlex
import sys
import time

from dml_basicsr.archs.network_loading import load_dmlnet
from dml_basicsr.data.errors import DatasetError
from dml_basicsr.data.image_io import read_image
from dml_basicsr.degradation import DMLDegradation
from dml_basicsr.degradation.camera_pairs import WHOLE, alignment_problem, evaluation_folds, load_camera_pairs
from dml_basicsr.degradation.lr_fidelity import (LR_BORDER, bicubic_degradation, least_squares_degradation,
                                                 lr_band, lr_fidelity, mean_fidelity)
from dml_basicsr.degradation.noise_fit import fit_noise, noise_file, noise_path, write_noise_file
from dml_basicsr.degradation.pretrained_models import checkpoint_or_pretrained, pretrained_path, shipped_name
from dml_basicsr.models.finite_loss import TrainingDivergedError
from dml_basicsr.utils.checkpoint import CheckpointError, file_sha256, save_checkpoint
from dml_basicsr.utils.devices import torch_device
from dml_basicsr.utils.options import OptionError
from dml_basicsr.utils.output_folder import OutputFolder, OutputFolderError, check_run_folder, output_lock, overlap
from dml_basicsr.utils.safe_yaml import dump_yaml, load_yaml_text, read_yaml
from dml_basicsr.utils.training_saves import CheckpointSaveError
from dml_basicsr.visualization.paper_figures import degradation_figures
from . import fail
from .adapt_plan import (AUGMENTS, EXPERIMENT, HELD_OUT_SET, TRAINABLE, first_difference, fold_name, make_plan,
                         plan_data, training_options)
from .basicsr_options import run_args
from .basicsr_scope import basicsr_run
from .preflight import check_option_file

HELP = 'Fine-tune a DML degradation to your own camera from a few aligned HR-LR pairs (BasicSR training).'
# Chosen by measurement on RealSR pairs (docs/adapt.md, "How the defaults were chosen").
DEFAULTS = dict(iterations=500, lr=1e-3, train='basis', gt_size=96, batch_size=8, val_freq=50, augment='none')
MIN_GT_SIZE = 32  # HR pixels: smaller training patches give the weight CNN too little context
PICTURE_SIZE = 256
PLAN, OPTIONS, RECORD, MODEL = 'adapt_plan.yml', 'adapt_options.yml', 'adapt.yml', 'model.pth'
PICTURES = 'pictures'
PICTURE_NAMES = ('basis', 'weights', 'weights_stretched', 'kernels', 'kernel_points')
PLAN_KEYS = {'source', 'pairs_dir', 'pairs', 'budget'}  # a changed plan is existing_plan_problem's
FOLD_RUNS = tuple(fold_name(i) for i in (1, 2))  # the leave-one-out runs of 2 pairs


def options_name(run_name):
    """The BasicSR option file of a run in OUT: adapt_options.yml, adapt_options_fold1.yml, ..."""
    return OPTIONS if run_name == EXPERIMENT else f'adapt_options_{run_name[len(EXPERIMENT) + 1:]}.yml'


FOLD_OPTIONS = tuple(options_name(run) for run in FOLD_RUNS)
OUTPUTS = (PLAN, OPTIONS, *FOLD_OPTIONS, RECORD, MODEL, MODEL + '.noise.yml', PICTURES, 'experiments')
DESCRIPTION = HELP + f'''

PAIRS holds HR/ and LR/ with the same file names (BasicSR's paired folders), or RealSR's
<Cam>_<NNN>_HR.png + _LR<s>.png, or City100's NNNH.PNG + NNNL.PNG, in one folder; colour or gray, any
number of pairs from 1. The LR must be 1/s of the HR for the model's scale s, and aligned with it:
each pair's real LR is compared with the model's LR of its HR (phase correlation): a pair shifted by
more than 2 HR pixels over the whole image, whose quadrants move apart by more than 3 HR pixels
(another scale, a rotation), or of another scene is refused, naming the file, before anything is
written.

With 3 or more pairs, a fifth of them (at least one, drawn with --seed) is held out; with 2, each
is held out in turn (leave-one-out: a run adapted on the other pair measures it, then a last run adapts
on both); with 1, its right third is. The model is fine-tuned through BasicSR's training (DMLModel; the
log, the checkpoints and the training states are in OUT/experiments/{EXPERIMENT}*/), validated on the
held-out part every --val-freq iterations; the weights at the end of the budget become OUT/model.pth,
unless the held-out part finds them worse than the unadapted model (then the unadapted model does).
The held-out part also gives the table it prints: PSNR/SSIM (Y, {LR_BORDER}-pixel LR border left out) of MATLAB
bicubic, the least-squares 15x15 kernel fitted on the same training pairs, the unadapted and the
adapted model against the real LR. By default only the basis kernels are fine-tuned (--train).

OUT gets model.pth (loads with DMLDegradation.from_checkpoint, `degradation: {{checkpoint: OUT/model.pth}}`
and the mmengine components), model.pth.noise.yml (its noise fitted on all the pairs, for noise: fitted;
not written, with a warning, when the pairs have too few flat areas to fit it),
pictures/ (basis, weight maps, kernels, as basicsr visualize draws them), adapt.yml (the source model
and the pairs with their sha256, the command, the budget, the curve, the table) and the run itself.
OUT must not exist (--overwrite replaces an earlier adapt output; --auto_resume continues an interrupted
one with the same source, pairs and budget), and must not overlap PAIRS.'''


def add_arguments(p):
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = DESCRIPTION
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument('--pretrained', metavar='NAME', help='a shipped DML model, e.g. realsr-x4')
    source.add_argument('--checkpoint', metavar='PTH', help="a trained DMLNet (basicsr train's net_g_*.pth)")
    p.add_argument('--pairs', required=True, metavar='DIR', help='the aligned HR-LR pairs of the new camera')
    p.add_argument('--output', required=True, metavar='OUT', help='a new folder for the adapted model and its record')
    p.add_argument('--iters', type=int, default=DEFAULTS['iterations'],
                   help=f'fine-tuning iterations (default {DEFAULTS["iterations"]})')
    p.add_argument('--lr', type=float, default=DEFAULTS['lr'], help=f'Adam learning rate (default {DEFAULTS["lr"]:g})')
    p.add_argument('--train', choices=sorted(TRAINABLE), default=DEFAULTS['train'],
                   help=f'what is fine-tuned (default {DEFAULTS["train"]})')
    p.add_argument('--gt-size', type=int, default=DEFAULTS['gt_size'],
                   help=f'HR patch side (default {DEFAULTS["gt_size"]}; smaller if a pair is smaller)')
    p.add_argument('--batch-size', type=int, default=DEFAULTS['batch_size'],
                   help=f'patches per iteration (default {DEFAULTS["batch_size"]})')
    p.add_argument('--augment', choices=AUGMENTS, default=DEFAULTS['augment'],
                   help=f'training-patch augmentation: none, or flip (BasicSR\'s random flips and 90-degree rotations) '
                        f'(default {DEFAULTS["augment"]})')
    p.add_argument('--val-freq', type=int, default=DEFAULTS['val_freq'],
                   help=f'held-out validation and checkpoint every N iterations (default {DEFAULTS["val_freq"]})')
    p.add_argument('--seed', type=int, default=0, help='seed of the held-out draw and the training (default 0)')
    p.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto',
                   help='auto: CUDA when present (default)')
    p.add_argument('--param-key', default='params', help="the checkpoint's key of the weights (default: params)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument('--overwrite', action='store_true', help='replace an earlier basicsr adapt output in OUT')
    resume.add_argument('--auto_resume', '--auto-resume', dest='auto_resume', action='store_true',
                        help='continue an interrupted basicsr adapt into OUT (the same source, pairs and budget)')


class AdaptError(ValueError):
    """A wrong argument, pair or output folder; the message names it."""


def check_numbers(args):
    """AdaptError for a number out of range; the torch device of --device (auto: CUDA when present)."""
    for key in ('iters', 'batch_size', 'gt_size', 'val_freq'):
        if getattr(args, key) < 1:
            raise AdaptError(f'--{key.replace("_", "-")} must be >= 1, got {getattr(args, key)}')
    if not (args.lr > 0 and args.lr < 1):
        raise AdaptError(f'--lr must be in (0, 1), got {args.lr}')
    if args.seed < 0:
        raise AdaptError(f'--seed must be >= 0, got {args.seed}')
    try:
        return torch_device(args.device, allow_auto=True)
    except ValueError as e:
        raise AdaptError(f'--{e} (use --device cpu)') from None  # the message starts with 'device'


def source_of(args):
    """(checkpoint path, the record's source entry, the frozen DMLNet)."""
    name = args.pretrained or shipped_name(args.checkpoint)
    path = pretrained_path(name) if name else checkpoint_or_pretrained(args.checkpoint, '--checkpoint')
    if not os.path.isfile(path):
        raise AdaptError(f'--checkpoint {path}: not a file')
    net = load_dmlnet(path, args.param_key)
    entry = dict(pretrained=name) if name else dict(checkpoint=os.path.abspath(path))
    network_g = dict(num_in_ch=net.num_in_ch, num_basis=net.num_basis, kernel_size=net.kernel_size, scale=net.scale,
                     num_feat=net.weight_net.enc1[0].out_channels)
    return path, dict(entry, sha256=file_sha256(path), network_g=network_g), net


def check_output(args, source_path):
    """AdaptError if OUT is a link, overlaps PAIRS or the source, or exists without --overwrite/--auto_resume (or,
    with them, holds what no basicsr adapt wrote)."""
    if os.path.islink(args.output):
        raise AdaptError(f'--output {args.output} is a symbolic link: this command never writes through a link')
    if overlap(args.output, [args.pairs]):
        raise AdaptError(f'--output {args.output} overlaps --pairs {args.pairs} (one is the other or inside it): '
                         'the outputs never go where the pairs are; choose an output folder outside it')
    if overlap(args.output, [source_path]):
        raise AdaptError(f'--output {args.output} holds the source model {source_path}: choose another output folder')
    if not os.path.lexists(args.output):
        if args.auto_resume:
            raise AdaptError(f'--auto_resume: {args.output} does not exist: there is no run to continue')
        return
    if not os.path.isdir(args.output):
        raise AdaptError(f'--output {args.output} exists and is not a folder')
    entries = sorted(os.listdir(args.output))
    if not (args.overwrite or args.auto_resume):
        raise AdaptError(f'--output {args.output} exists{" (empty)" if not entries else ""}: give a new folder, '
                         '--overwrite to replace an earlier adapt output, or --auto_resume to continue one')
    foreign = [e for e in entries if e not in OUTPUTS]
    if foreign or (entries and PLAN not in entries):
        raise AdaptError(f'--output {args.output} is not a basicsr adapt output (it holds '
                         f'{", ".join(foreign or entries)}): --overwrite and --auto_resume only touch those')
    for name in entries:
        if os.path.islink(os.path.join(args.output, name)):
            raise AdaptError(f'{os.path.join(args.output, name)} is a symbolic link: this command never writes or '
                             'deletes through a link')
    if entries:
        check_written_by_adapt(args.output, entries)


def check_written_by_adapt(out, entries):
    """AdaptError unless what --overwrite deletes and --auto_resume writes into looks as basicsr adapt leaves it: a
    plan with the keys this command writes, experiments/ holding only its runs (or the copies BasicSR archived of
    them), none with a symbolic link anywhere inside (BasicSR's writers would follow it), pictures/ only the pictures
    it draws."""
    plan = read_yaml(os.path.join(out, PLAN), AdaptError)
    if not isinstance(plan, dict) or not PLAN_KEYS <= set(plan):
        raise AdaptError(f'{os.path.join(out, PLAN)} is not a plan basicsr adapt wrote (no '
                         f'{", ".join(sorted(PLAN_KEYS - set(plan or {}) if isinstance(plan, dict) else PLAN_KEYS))}): '
                         '--overwrite and --auto_resume only touch its own outputs')
    runs = (EXPERIMENT, *FOLD_RUNS)
    owned = {'experiments': lambda name: name in runs or any(name.startswith(f'{run}_archived_') for run in runs),
             PICTURES: lambda name: name in {f'{picture}.png' for picture in PICTURE_NAMES}}
    for folder, is_owned in owned.items():
        path = os.path.join(out, folder)
        if folder not in entries:
            continue
        if not os.path.isdir(path):
            raise AdaptError(f'{path} is not a folder: not what basicsr adapt wrote')
        foreign = sorted(name for name in os.listdir(path) if not is_owned(name))
        if foreign:
            raise AdaptError(f'{path} holds {", ".join(foreign)}, which basicsr adapt did not write: --overwrite and '
                             '--auto_resume only touch its own outputs')
    for run in sorted(os.listdir(os.path.join(out, 'experiments'))) if 'experiments' in entries else ():
        try:
            check_run_folder(os.path.join(out, 'experiments', run), 'the run folder')
        except OutputFolderError as e:
            raise AdaptError(str(e)) from None


def training_regions(train_items, held_items, scale, gt_size):
    """The patch size to train with (``gt_size``, or less for small pairs); AdaptError if a pair is too small to
    train on or to evaluate (``train_items``, ``held_items``: of every fold)."""
    for pair, columns in held_items:
        band = lr_band(pair.lr, columns)
        if min(band.shape[-2:]) < 2 * LR_BORDER + 8:
            raise AdaptError(f'{pair.lr_path}: its held-out part is {band.shape[-1]}x{band.shape[-2]} LR pixels, too '
                             f'small to evaluate with a {LR_BORDER}-pixel border (at least {2 * LR_BORDER + 8} a side)')
    smallest, where = None, None
    for pair, columns in train_items:
        band = lr_band(pair.lr, columns)
        side = min(band.shape[-2:]) * scale
        if smallest is None or side < smallest:
            smallest, where = side, pair.lr_path
    size = min(gt_size, smallest) // scale * scale  # BasicSR crops patches of a multiple of the scale
    if size < max(MIN_GT_SIZE, 2 * scale):
        raise AdaptError(f'{where}: its training part is {smallest} HR pixels a side, too small for training patches '
                         f'of at least {max(MIN_GT_SIZE, 2 * scale)}')
    return size


def checked_pairs(args, net):
    """The pairs of PAIRS, each read, of the model's scale and aligned with its LR; AdaptError naming the file."""
    try:
        pairs = load_camera_pairs(args.pairs, net.scale, net.num_in_ch)
    except DatasetError as e:
        raise AdaptError(str(e)) from None
    print(f'basicsr adapt: {len(pairs)} pair{"s" * (len(pairs) != 1)} read; checking that each is aligned with the '
          "model's LR of its HR", flush=True)
    unadapted = DMLDegradation(net, noise_sigma=0)
    for pair in pairs:
        problem = alignment_problem(unadapted, pair)
        if problem:
            raise AdaptError(f'{pair.lr_path}: {problem}')
    return pairs


def prepare(args):
    """Every check and every number that needs no writing: (plan, source path, baselines)."""
    device = check_numbers(args)
    source_path, source, net = source_of(args)
    check_output(args, source_path)
    pairs = checked_pairs(args, net)
    folds = evaluation_folds(pairs, args.seed)
    gt_size = training_regions([i for train, _ in folds for i in train], [i for _, held in folds for i in held],
                               net.scale, args.gt_size)
    num_gpu = int(device.type == 'cuda')
    budget = dict(iterations=args.iters, lr=args.lr, train=args.train, gt_size=gt_size, batch_size=args.batch_size,
                  val_freq=args.val_freq, seed=args.seed, num_gpu=num_gpu, augment=args.augment)
    plan = make_plan(source, args.pairs, pairs, folds, budget)
    print('basicsr adapt: measuring MATLAB bicubic, the least-squares kernel and the unadapted model on the held-out '
          'part', flush=True)
    unadapted = DMLDegradation(net, noise_sigma=0)
    baselines = {
        f'MATLAB bicubic /{net.scale}': over_folds(folds, lambda train: bicubic_degradation(net.scale)),
        'Least-squares 15x15 kernel (closed form, same training pairs)':
            over_folds(folds, lambda train: least_squares_degradation(train, net.scale)),
        f'Unadapted ({source.get("pretrained") or os.path.basename(source_path)})':
            over_folds(folds, lambda train: unadapted),
    }
    return plan, source_path, baselines


def over_folds(folds, degradation_of):
    """The LR fidelity on the held-out part of every fold of ``degradation_of(its training items)``, pooled."""
    return mean_fidelity([row for train, held in folds for row in lr_fidelity(degradation_of(train), held)['images']])


def existing_plan_problem(args, plan):
    """With --auto_resume: why OUT's plan does not match this one (None if it does)."""
    path = os.path.join(args.output, PLAN)
    old = read_yaml(path, AdaptError)
    new = dump_yaml(plan_data(plan))
    difference = first_difference(old, load_yaml_text(new, 'plan'))
    return None if difference is None else f'{path} differs from this run at {difference}: start a new OUT or ' \
                                           'give the same source, pairs and budget'


def remove_outputs(out, inputs=()):
    """Remove what an earlier basicsr adapt wrote into ``out`` (check_output made sure it holds nothing else) through
    its OutputFolder: a real folder with what is in it, a file or a link itself, never what a link points to."""
    folder = OutputFolder(out, inputs)
    for name in OUTPUTS:
        path = os.path.join(out, name)
        if os.path.isdir(path) and not os.path.islink(path):
            folder.remove_tree(name)
        else:
            folder.remove(name)


def log_every(plan):
    """Iterations between log lines (the progress bar moves at every one): twenty lines a run."""
    return max(1, plan['budget']['iterations'] // 20)


def train(args, plan, source_path):
    """Fine-tune through BasicSR's train_pipeline (root: OUT), each run of the plan from its written option file
    (the folds of a leave-one-out first, then the run of model.pth)."""
    from basicsr.train import train_pipeline

    folder = OutputFolder(args.output, [args.pairs])
    options_paths = []
    for run in plan['items']:  # every run's option file written and checked before the first trains
        options_path = folder.write_text(options_name(run[0]), dump_yaml(training_options(plan, source_path, run),
                                                                          default_flow_style=None, width=120))
        check_option_file(options_path, command='train', run_folders_here=False)  # OUT's: check_written_by_adapt
        options_paths.append(options_path)
    for options_path in options_paths:
        with basicsr_run(run_args('adapt', options_path, args.auto_resume), log_every=log_every(plan)):
            train_pipeline(os.path.abspath(args.output))


def held_out_curve(out, total_iter, experiment=EXPERIMENT):
    """{iteration: {psnr, ssim}} of the held-out validations BasicSR logged at its checkpoints (the last of an
    iteration repeated by a resume; not BasicSR's extra validation after the last iteration)."""
    path = os.path.join(out, 'experiments', experiment, f'metrics_{HELD_OUT_SET}.csv')
    per_image = {}
    with open(path, newline='') as f:
        for row in csv.DictReader(f):
            per_image[(int(row['iter']), row['image'])] = row
    curve = {}
    models = os.path.join(out, 'experiments', experiment, 'models')
    for iteration in sorted({it for it, _ in per_image}):
        if iteration > total_iter or not os.path.isfile(os.path.join(models, f'net_g_{iteration}.pth')):
            continue
        rows = [r for (it, _), r in per_image.items() if it == iteration]
        curve[iteration] = {k: round(sum(float(r[k]) for r in rows) / len(rows), 4) for k in ('psnr', 'ssim')}
    return curve


def write_pictures(folder, net, hr_path):
    """basis.png, weights.png, weights_stretched.png, kernels.png, kernel_points.png of ``net`` on the central
    :data:`PICTURE_SIZE` square of an HR image (as ``basicsr visualize --center-crop`` draws them) into the
    :class:`OutputFolder` ``folder``."""
    image = read_image(hr_path)
    size = min(PICTURE_SIZE, *image.shape[:2])
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    figures = degradation_figures(net, image[top:top + size, left:left + size], grid=3)
    for name, picture in figures.items():
        folder.write_png(name, picture)
    return sorted(figures)


def plan_pairs(plan):
    """Every pair of the plan once (a pair may train in one run and be held out in another, or give both bands of
    one run), as read for the model (Y or RGB)."""
    return list({id(p): p for _, train, held in plan['items'] for p, _ in train + held}.values())


def final_weights(out, experiment):
    """The weights a run ended with: BasicSR's ``net_g_latest.pth``, saved after the last iteration whatever
    --val-freq was (a numbered checkpoint may lie up to --val-freq - 1 iterations before it); AdaptError if the run
    left none."""
    path = os.path.join(out, 'experiments', experiment, 'models', 'net_g_latest.pth')
    if not os.path.isfile(path):
        raise AdaptError(f'{path} is missing: the run {experiment} did not finish; continue it with --auto_resume')
    return path


def adapted_result(out, plan, unadapted_psnr):
    """(chosen iteration: the budget's last, or 0 for the unadapted model; the weights of model.pth or None; the
    held-out fidelity of the adaptation; the held-out curve).

    The adapted row is always the adapted weights at the end of the budget on the held-out part (one run: its
    held-out pairs or band; leave-one-out: each fold's final weights on the pair it did not train on, pooled), never
    the best checkpoint: on development scenes that choice, made on one held-out pair, picked worse checkpoints than
    the end of the budget did (docs/adapt.md). model.pth gets the final weights of the run that trained on every
    training pair, unless the adapted row is worse than the unadapted model."""
    iters = plan['budget']['iterations']
    *folds, (final, _, held_items) = plan['items']
    measured = folds or [plan['items'][-1]]
    rows = []
    for name, _, held in measured:
        rows += lr_fidelity(DMLDegradation(load_dmlnet(final_weights(out, name)), noise_sigma=0), held)['images']
    adapted = mean_fidelity(rows)
    paid = adapted['psnr'] >= unadapted_psnr
    curve = {name: held_out_curve(out, iters, name) for name, _, _ in folds} if folds else held_out_curve(out, iters,
                                                                                                          final)
    return (iters, final_weights(out, final), adapted, curve) if paid else (0, None, adapted, curve)


def fitted_noise(model_path, net, pairs, pairs_dir):
    """Write the adapted model's noise, fitted on all the ``pairs`` (as read for the model), beside it: a Y fit and
    an RGB fit for a Y model (its kernels apply to RGB too; the RGB pairs are read from ``pairs_dir``), an RGB fit
    for an RGB one. Returns (the noise file's name, None) or (None, why not)."""
    degradation = DMLDegradation(net, noise_sigma=0)
    result = None
    for color, channels in (('y', 1), ('rgb', 3)) if net.num_in_ch == 1 else (('rgb', 3),):
        if channels != net.num_in_ch:
            pairs = load_camera_pairs(pairs_dir, net.scale, channels)
        try:
            entry = fit_noise(degradation, [(p.name, p.hr, p.lr) for p in pairs])
        except DatasetError as e:
            return None, f'{color}: {e}'
        data = dict(pairs=[p.name for p in pairs], fitted_by='basicsr adapt')
        one = noise_file(entry, color, model_path, data)
        result = one if result is None else dict(result, **{color: one[color]})
    write_noise_file(noise_path(model_path), result)
    return os.path.basename(noise_path(model_path)), None


def table_text(rows):
    lines = ['| Method | PSNR | SSIM |', '| --- | ---: | ---: |']
    lines += [f'| {name} | {r["psnr"]:.2f} | {r["ssim"]:.4f} |' for name, r in rows.items()]
    return '\n'.join(lines)


def held_out_description(plan):
    """(names of the held-out pairs, how they were held out, the held-out columns)."""
    *folds, (_, _, held_items) = plan['items']
    if folds:
        return (sorted({p.name for _, _, held in folds for p, _ in held}),
                'leave-one-out: each pair held out in turn, its row from the run adapted on the other pair; '
                'model.pth adapted on both', list(WHOLE))
    how = ('whole pairs drawn with --seed' if held_items[0][1] == WHOLE
           else 'the right third of the pair (a single pair)')
    return sorted({p.name for p, _ in held_items}), how, list(held_items[0][1])


def finish(args, plan, source_path, baselines, started):
    """Write model.pth (:func:`adapted_result` chooses it), its noise, the pictures and the record; returns the
    table's rows and the record."""
    out = args.output
    unadapted_label = list(baselines)[-1]
    iters = plan['budget']['iterations']
    chosen, chosen_path, adapted, curve = adapted_result(out, plan, baselines[unadapted_label]['psnr'])
    model_path = os.path.join(out, MODEL)
    net = load_dmlnet(chosen_path, 'params') if chosen else load_dmlnet(source_path, args.param_key)
    save_checkpoint({'params': net.state_dict()}, model_path, [args.pairs])
    rows = dict(baselines)
    held, how, columns = held_out_description(plan)
    label = 'leave-one-out, iteration' if len(plan['items']) > 1 else 'iteration'
    rows[f'Adapted ({label} {iters} of {iters})'] = adapted
    noise_name, noise_problem = fitted_noise(model_path, net, plan_pairs(plan), args.pairs)
    first_held = [p for _, _, held_items in plan['items'] for p, _ in held_items][0]
    pictures = write_pictures(OutputFolder(os.path.join(out, PICTURES), [args.pairs]), net, first_held.hr_path)
    record = dict(
        plan_data(plan),
        command=shlex.join(['basicsr', 'adapt', *sys.argv[2:]]) if sys.argv[1:2] == ['adapt']
        else shlex.join(sys.argv),
        held_out=dict(pairs=held, columns=columns, how=how),
        protocol=f'LR generation against the real LR of the held-out part: Y, 8-bit, {LR_BORDER}-pixel LR border '
                 'left out; the adapted row is the weights at the end of the budget' +
                 (' of each fold, pooled' if len(plan['items']) > 1 else '') +
                 '; model.pth is the final weights of the run on every training pair, or the unadapted model '
                 '(chosen_iteration 0) if the adapted row is worse than the unadapted one',
        curve=curve, chosen_iteration=chosen,
        results=[dict(method=name, psnr=r['psnr'], ssim=r['ssim'], images=r['images']) for name, r in rows.items()],
        outputs=dict(model=MODEL, model_sha256=file_sha256(model_path), noise=noise_name,
                     noise_not_fitted=noise_problem, pictures=[f'{PICTURES}/{n}' for n in pictures]),
        wall_seconds=round(time.time() - started, 1),
    )
    OutputFolder(out, [args.pairs]).write_text(RECORD, dump_yaml(record, default_flow_style=None, width=120))
    return rows, record


def verdict_of(rows):
    """'adaptation paid (PSNR +0.31 dB, SSIM +0.0021 on the held-out part)' from the table's last two rows
    (unadapted, adapted)."""
    unadapted, adapted = list(rows.values())[-2:]
    psnr, ssim = adapted['psnr'] - unadapted['psnr'], adapted['ssim'] - unadapted['ssim']
    return f'adaptation paid (PSNR {psnr:+.2f} dB, SSIM {ssim:+.4f} on the held-out part)'


def run(args):
    started = time.time()
    try:
        plan, source_path, baselines = prepare(args)
        if args.auto_resume:
            problem = existing_plan_problem(args, plan)
            if problem:
                raise AdaptError(problem)
        with output_lock(args.output, 'basicsr adapt'):
            if args.overwrite:
                remove_outputs(args.output, [args.pairs])
            OutputFolder(args.output, [args.pairs]).write_text(PLAN, dump_yaml(plan_data(plan),
                                                                               default_flow_style=None, width=120))
            train(args, plan, source_path)
            rows, record = finish(args, plan, source_path, baselines, started)
    except (AdaptError, DatasetError, OptionError, CheckpointError, OutputFolderError, ValueError) as e:
        return fail('adapt', e)
    except (TrainingDivergedError, CheckpointSaveError) as e:
        return fail('adapt', e, status=1)
    held = record['held_out']
    print(f'\nLR generation on the held-out {", ".join(held["pairs"])} ({held["how"]}; Y, {LR_BORDER}-pixel border):\n')
    print(table_text(rows))
    verdict = verdict_of(rows) if record['chosen_iteration'] else ('adaptation did not beat the unadapted model: '
                                                                    'model.pth is the unadapted model')
    print(f'\nbasicsr adapt: {verdict}; {os.path.join(args.output, MODEL)} and its record {RECORD} written '
          f'({record["wall_seconds"]:.0f} s)')
    if record['outputs']['noise_not_fitted']:
        print(f'basicsr adapt: warning: no fitted noise ({record["outputs"]["noise_not_fitted"]})', file=sys.stderr)
    return 0
