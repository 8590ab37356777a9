"""Checks run before BasicSR's pipelines start writing experiment folders.

BasicSR creates ``experiments/<name>`` (and archives an old one) before it builds a single
dataset; a wrong ``dataroot`` would leave a half-made experiment behind. Here the option file
is read and every dataset's ``check_options`` (a cheap layout check, no image decoding) runs first;
so do the checks that would otherwise fail late: unknown keys in the sections this package reads (with
the closest valid key), ``network_g`` built on the CPU, its ``pretrain_network_g`` (and ``network_d`` with its
``pretrain_network_d``) and the degradation's
DML checkpoint loaded (present, readable, finite, of the right arch and scale). An option file with a top-level
``manifest`` (``basicsr test`` of every row of a manifest of trained networks, :mod:`.manifest_test`) has no
``network_g``: its datasets are checked here, each row's network and checkpoint in the option file derived for it.
The folders the run writes (``experiments/<name>``, ``tb_logger/<name>``, ``results/<name>``) are checked too: none
is or holds a symbolic link that BasicSR's own writers would write through, none is, holds or lies inside a dataset's
dataroot (BasicSR archives an old run folder by renaming it); and each ``val.metrics`` crop_border leaves something of
the smallest validation image whose size its header declares.
"""
import math
import os

from basicsr.utils.registry import DATASET_REGISTRY, MODEL_REGISTRY

from dml_basicsr.archs.network_loading import build_network_opt, check_weights_fit
from .training_resume import latest_training_state
from dml_basicsr.data.dataset_checks import BASICSR_DATASET_KEYS, is_positive_int
from dml_basicsr.data.image_io import check_image_file
from dml_basicsr.data.paired_base import PairedImageFolder
from dml_basicsr.degradation import DMLDegradation, build_degradation
from dml_basicsr.degradation.dml_degradation import SOURCE_KEYS, degradation_source
from dml_basicsr.degradation.pretrained_models import checkpoint_or_pretrained, pretrained_manifest, pretrained_path
from dml_basicsr.models.dml_model import DMLModel, freeze_all_but
from dml_basicsr.utils.checkpoint import CheckpointError
from dml_basicsr.utils.options import OptionError, check_known_keys, constructor_options, load_options
from dml_basicsr.utils.output_folder import OutputFolderError, check_run_folder, overlap
from .option_values import check_option_values

# The degradation section: DMLDegradation's options, and where its DMLNet comes from.
DEGRADATION_KEYS = (constructor_options(DMLDegradation) - {'net'}) | set(SOURCE_KEYS) | {'param_key'}


def check_option_file(opt_path, force_yml=None, auto_resume=False, command=None, debug=False, run_folders_here=True):
    """Read the option file (with ``--force_yml`` applied) and check its degradation, datasets, network and run
    folders; ``command`` ('train' or 'test', if known) is the ``basicsr`` subcommand that will run it (``debug``: with
    ``--debug``). ``run_folders_here=False``: the run's folders are not under the working folder (``basicsr adapt``
    trains under its OUT and checks its own run folders)."""
    opt = load_options(opt_path, force_yml)
    check_manifest_key(opt, opt_path, command)
    check_option_values(opt, opt_path, command)
    if run_folders_here:
        check_run_folders(opt, opt_path, command, auto_resume, debug)
    if isinstance(opt.get('degradation'), dict):
        check_known_keys(opt['degradation'], DEGRADATION_KEYS, f'{opt_path}: degradation', 'OnlineSynthesisSRModel')
    check_degradation(opt, opt_path)
    check_datasets(opt, opt_path)
    check_crop_borders(opt, opt_path)
    check_degradation_model(opt, opt_path)
    check_network(opt, opt_path, auto_resume, debug)
    return opt


def check_manifest_key(opt, opt_path, command):
    """A ``manifest`` (a models.yml whose rows each give network_g and checkpoint) is for ``basicsr test`` only, and
    replaces ``network_g`` and ``path.pretrain_network_g``."""
    if 'manifest' not in opt:
        return
    manifest = opt['manifest']
    if command not in (None, 'test'):
        raise OptionError(f'{opt_path}: manifest: basicsr {command} trains the one network_g of an option file; a '
                          'manifest of trained networks is for basicsr test (remove the manifest key)')
    if not isinstance(manifest, str) or not manifest.strip():
        raise OptionError(f'{opt_path}: manifest must be the path of a models.yml (relative to the current '
                          f'directory), got {manifest!r}')
    if not isinstance(opt.get('name'), str) or not opt['name'].strip():
        raise OptionError(f'{opt_path}: name is missing: with a manifest, each row is tested as <name>_<label> into '
                          'results/<name>_<label>/')
    if 'network_g' in opt:
        raise OptionError(f'{opt_path}: manifest and network_g together: every row of {manifest} gives its own '
                          'network_g; remove network_g from the option file')
    if (opt.get('path') or {}).get('pretrain_network_g'):
        raise OptionError(f'{opt_path}: manifest and path.pretrain_network_g together: every row of {manifest} gives '
                          'its own checkpoint; remove path.pretrain_network_g from the option file')


def run_name(name, debug):
    """The name BasicSR gives a run of ``name``: ``debug_<name>`` with ``--debug``."""
    return 'debug_' + name if debug and not name.startswith('debug') else name


def run_folders(opt, command, debug=False):
    """The folders (relative to the working folder) that ``basicsr <command>`` of ``opt`` writes: train:
    ``experiments/<name>`` and, with ``logger.use_tb_logger`` and no 'debug' in the name, ``tb_logger/<name>``;
    test: ``results/<name>``."""
    name = run_name(opt['name'], debug)
    if command == 'test':
        return [os.path.join('results', name)]
    logger = opt.get('logger') if isinstance(opt.get('logger'), dict) else {}
    tensorboard = logger.get('use_tb_logger') and 'debug' not in name
    return [os.path.join('experiments', name)] + ([os.path.join('tb_logger', name)] if tensorboard else [])


def dataroots(section):
    """Every ``dataroot*`` path of a dataset section and of the sections nested in it (``real``: OnlineSynthesisDataset
    mixes in a real dataset)."""
    found = []
    for key, value in section.items():
        if isinstance(value, dict):
            found += dataroots(value)
        elif str(key).startswith('dataroot') and isinstance(value, str) and value:
            found.append(os.path.expanduser(value))
    return found


def resumes(opt, command, auto_resume, debug):
    """Whether ``basicsr <command>`` resumes a training (``path.resume_state``, or ``--auto_resume`` with a training
    state to take): BasicSR then writes into the existing experiment folder, and reads its own files from it."""
    if command != 'train':
        return False
    path_opt = opt.get('path') if isinstance(opt.get('path'), dict) else {}
    states = os.path.join('experiments', run_name(opt['name'], debug), 'training_states')
    return bool(path_opt.get('resume_state') or (auto_resume and latest_training_state(states)))


def read_paths(opt, resuming=False):
    """[(path, what)] of every file or folder the run reads: each dataset's dataroots, ``degradation.checkpoint``,
    and, unless the run resumes (its pretrained networks are then its own), ``path.pretrain_network_g`` and
    ``path.pretrain_network_d``."""
    found = [(root, 'a dataroot') for section in opt['datasets'].values() for root in dataroots(section)]
    degradation = opt.get('degradation') if isinstance(opt.get('degradation'), dict) else {}
    found.append((degradation.get('checkpoint'), 'degradation.checkpoint'))
    path_opt = opt.get('path') if isinstance(opt.get('path'), dict) else {}
    if not resuming:
        found += [(path_opt.get(key), f'path.{key}') for key in ('pretrain_network_g', 'pretrain_network_d')]
    return [(os.path.expanduser(path), what) for path, what in found if isinstance(path, str) and path]


def check_run_folders(opt, opt_path, command, auto_resume=False, debug=False):
    """The run folders of ``basicsr <command>`` (:func:`run_folders`) are no symbolic links, hold none when the run
    writes into them as they are (``--auto_resume``; otherwise BasicSR archives them first), and are, hold and lie
    inside nothing the run reads (:func:`read_paths`); a manifest's rows are checked in the option files derived for
    them."""
    if command not in ('train', 'test') or 'manifest' in opt:
        return
    folders = run_folders(opt, command, debug)
    for folder in folders:
        check_run_folder(folder, 'the run folder', inside=auto_resume and command == 'train')
    inputs = read_paths(opt, resumes(opt, command, auto_resume, debug))
    for folder in folders:
        found = overlap(folder, [path for path, _ in inputs])
        if found:
            what = next(what for path, what in inputs if path == found[0])
            raise OutputFolderError(f'{opt_path}: the run folder {folder} {found[1]} {found[0]} ({what}): BasicSR '
                                    'renames an old run folder and writes into a new one; give the run another name '
                                    'or move what it reads')


def check_degradation(opt, opt_path):
    """An online-degradation model needs exactly one source, and its DML checkpoint to exist."""
    if 'degradation' not in opt:
        return
    try:
        key, value = degradation_source(opt['degradation'] or {})
    except ValueError as e:
        raise OptionError(f'{opt_path}: {e}') from None
    shipped = pretrained_manifest()
    if key == 'pretrained' and value not in shipped:
        raise OptionError(f'{opt_path}: degradation.pretrained {value!r} is not a shipped model; available: '
                          f'{", ".join(sorted(shipped))}')
    if key == 'checkpoint':
        try:
            checkpoint_or_pretrained(value, 'degradation.checkpoint')
        except CheckpointError as e:
            raise OptionError(f'{opt_path}: {e}; or train one with basicsr train -opt '
                              'options/train_dml_x<scale>.yml') from None


def check_datasets(opt, opt_path):
    """Run each dataset's ``check_options`` with the keys BasicSR adds (``phase``, ``scale``)."""
    for phase, dataset_opt in (opt.get('datasets') or {}).items():
        dataset_opt = dict(dataset_opt, phase=phase.split('_')[0])
        if 'scale' in opt:
            dataset_opt['scale'] = opt['scale']
        type_name = dataset_opt.get('type')
        try:
            cls = DATASET_REGISTRY.get(type_name)
        except KeyError:
            raise OptionError(f'{opt_path}: datasets.{phase}.type {type_name!r} is not a registered dataset') from None
        check_dataset_keys(cls, dataset_opt, f'{opt_path}: datasets.{phase}')
        check = getattr(cls, 'check_options', None)
        count = check(dataset_opt) if check is not None else None
        if dataset_opt['phase'] == 'train' and isinstance(count, int):
            check_batch_fits(count, dataset_opt, f'{opt_path}: datasets.{phase}')


def crop_borders(opt):
    """{metric name: crop_border} of the ``val.metrics`` that crop a border (an integer > 0)."""
    metrics = (opt.get('val') or {}).get('metrics') or {}
    return {name: metric['crop_border'] for name, metric in metrics.items()
            if isinstance(metric, dict) and is_positive_int(metric.get('crop_border'))}


def compares_lr(opt):
    """Whether the model computes its metrics on LR images (DMLModel and its subclasses: synthetic against real
    LR), not on HR ones (an SR model: SR against the ground truth)."""
    return issubclass(MODEL_REGISTRY.get(opt.get('model_type', 'SRModel')), DMLModel)


def smallest_compared_image(opt, phase, section, lr_space):
    """((height, width), path) of the smallest image a metric compares in the dataset ``section`` (its pairs'
    aligned HR, or LR if ``lr_space``), from the image headers; None if that is not known before reading
    (not a paired dataset on disk, or other formats)."""
    cls = DATASET_REGISTRY.get(section['type']) if section.get('type') in DATASET_REGISTRY else None
    backend = (section.get('io_backend') or {}).get('type', 'disk')
    if cls is None or not issubclass(cls, PairedImageFolder) or backend != 'disk':
        return None
    dataset_opt = dict(section, phase=phase.split('_')[0], cache=False)
    if 'scale' in opt:
        dataset_opt['scale'] = opt['scale']
    dataset = cls(dataset_opt)
    smallest = None
    for gt_path, lq_path in dataset.pairs:
        gt_size, lq_size = check_image_file(gt_path), check_image_file(lq_path)
        if not (gt_size and lq_size):
            continue
        h, w = dataset.aligned_size(gt_size, lq_size, gt_path, lq_path)
        s = dataset.crop_scale if lr_space else 1
        if smallest is None or min(h // s, w // s) < min(smallest[0]):
            smallest = ((h // s, w // s), lq_path if lr_space else gt_path)
    return smallest


def check_crop_borders(opt, opt_path):
    """Each ``val.metrics`` crop_border leaves something of the smallest image the metric compares in each
    validation dataset whose sizes the headers declare (twice the border below its shorter side): BasicSR would
    report NaN at the first validation, after the training ran. The metric's images are LR ones for a DMLModel,
    HR ones for an SR model; the others are checked at the validation (:func:`~dml_basicsr.models.per_image_metrics.
    image_metrics`)."""
    borders = crop_borders(opt)
    if not borders:
        return
    lr_space = compares_lr(opt)
    for phase, section in opt['datasets'].items():
        found = None if phase.split('_')[0] == 'train' else smallest_compared_image(opt, phase, section, lr_space)
        if found is None:
            continue
        (h, w), path = found
        for name, border in borders.items():
            if 2 * border >= min(h, w):
                raise OptionError(f'{opt_path}: val.metrics.{name}.crop_border {border} leaves nothing of the {w}x{h} '
                                  f'{"LR" if lr_space else "HR"} image {path} of datasets.{phase}; use a crop_border '
                                  f'of at most {(min(h, w) - 1) // 2}')


def world_size():
    """The number of training processes: WORLD_SIZE as torchrun sets it (SLURM_NTASKS under slurm), else 1."""
    for name in ('WORLD_SIZE', 'SLURM_NTASKS'):
        if os.environ.get(name, '').isdigit():
            return max(int(os.environ[name]), 1)
    return 1


def check_batch_fits(count, dataset_opt, where):
    """A training epoch holds at least one whole batch per process: BasicSR's sampler gives each process
    ceil(count * dataset_enlarge_ratio / world size) items and its DataLoader drops an incomplete last batch, so a
    larger batch would train 0 iterations and save the untrained network."""
    ratio = dataset_opt.get('dataset_enlarge_ratio', 1)
    batch = dataset_opt.get('batch_size_per_gpu')
    if not isinstance(ratio, int) or not isinstance(batch, int):
        return  # their types are checked with the other option values
    world = world_size()
    per_process = math.ceil(count * ratio / world)
    if batch > per_process:
        spread = f' over {world} processes' if world > 1 else ''
        raise OptionError(f'{where}: batch_size_per_gpu {batch} is larger than the {per_process} items per epoch '
                          f'({count} items x dataset_enlarge_ratio {ratio}{spread}): BasicSR drops the incomplete '
                          f'batch, so the training would run 0 iterations; use batch_size_per_gpu <= {per_process} or '
                          f'dataset_enlarge_ratio >= {math.ceil(batch * world / count)}')


def check_dataset_keys(cls, section, where):
    """Unknown keys of a section of one of this package's datasets (``OPTIONS``), and of its nested dataset
    sections (``NESTED_DATASETS``, e.g. OnlineSynthesisDataset's ``real``); BasicSR's datasets are not checked."""
    if getattr(cls, 'OPTIONS', None) is None:
        return
    check_known_keys(section, cls.OPTIONS | BASICSR_DATASET_KEYS, where, cls.__name__)
    for key in getattr(cls, 'NESTED_DATASETS', ()):
        nested = section.get(key)
        if isinstance(nested, dict) and nested.get('type') in DATASET_REGISTRY:
            check_dataset_keys(DATASET_REGISTRY.get(nested['type']), nested, f'{where}.{key}')


def check_degradation_model(opt, opt_path):
    """The degradation's DMLNet loads (present, readable, finite) and has the scale of the synthetic LR patches
    that the datasets need (``degradation_scale`` of OnlineSynthesisDataset); Real-ESRGAN's degradation builds, has that
    scale and takes their HR patches."""
    if 'degradation' not in opt:
        return
    section = opt['degradation'] or {}
    key, value = degradation_source(section)
    if key in ('real_esrgan', 'dsgan'):
        try:
            net = build_degradation(section)
        except CheckpointError:
            raise
        except ValueError as e:  # its message names the option
            raise OptionError(f'{opt_path}: {e}') from None
        what = f'{key} {dict(value)} is a x{net.scale} degradation'
    elif key == 'fixed_kernel':
        try:
            net = DMLDegradation.from_options(section).net
        except ValueError as e:  # its message names degradation.fixed_kernel
            raise OptionError(f'{opt_path}: {e}') from None
        what = f'fixed_kernel {dict(value)} is a x{net.scale} degradation'
    else:
        try:
            net = DMLDegradation.from_options(section).net
        except CheckpointError:
            raise
        except ValueError as e:  # its message names the option (degradation.noise_sigma etc.)
            raise OptionError(f'{opt_path}: {e}') from None
        path = checkpoint_or_pretrained(value) if key == 'checkpoint' else pretrained_path(value)
        what = f'{path} is a x{net.scale} DMLNet'
    for phase, dataset_opt in (opt.get('datasets') or {}).items():
        scale_of = getattr(DATASET_REGISTRY.get(dataset_opt.get('type')), 'degradation_scale', None)
        needed = scale_of(dict(dataset_opt, scale=opt.get('scale', 1))) if scale_of else None
        if needed not in (None, net.scale):
            raise OptionError(f'{opt_path}: degradation: {what}, but datasets.{phase} '
                              f'({dataset_opt["type"]}, scale {opt.get("scale", 1)}, lr_grid '
                              f'{dataset_opt.get("lr_grid", "lr")}) needs x{needed} LR patches: use a degradation '
                              f'of scale {needed}')
        if needed is not None and key == 'real_esrgan':
            check_real_esrgan_patches(net, dataset_opt, f'{opt_path}: datasets.{phase}')


def check_real_esrgan_patches(deg, dataset_opt, where):
    """The synthetic HR patches of a dataset (``gt_size`` x ``gt_size``, RGB unless ``color: y``) are ones that the
    :class:`RealESRGANDegradation` ``deg`` takes."""
    channels = 1 if dataset_opt.get('color') == 'y' else 3
    gt_size = dataset_opt.get('gt_size')
    if not isinstance(gt_size, int):
        return  # the dataset's own check names it
    try:
        deg.check_input((1, channels, gt_size, gt_size))
    except ValueError as e:
        hint = ' (color: y gives Y patches; use color: ~ for RGB)' if channels == 1 else ''
        raise OptionError(f'{where} (gt_size {gt_size}, color {dataset_opt.get("color")}): {e}{hint}') from None


def check_network(opt, opt_path, auto_resume=False, debug=False):
    """``network_g`` builds on the CPU, and ``path.pretrain_network_g`` (unless a resume replaces it) loads into it;
    so do ``network_d`` and ``path.pretrain_network_d`` (the discriminator of DSGANModel) where the file has them."""
    if 'network_g' not in opt:
        return
    net = build_network_opt(opt['network_g'], f'{opt_path}: network_g')
    check_trainable(opt, opt_path, net)
    experiment = os.path.join('experiments', run_name(str(opt.get('name')), debug))
    resuming = auto_resume and latest_training_state(os.path.join(experiment, 'training_states'))
    if resuming:
        check_resumed_network_fits(net, resuming, experiment, opt_path)
        return
    check_pretrained_network(net, opt, opt_path, 'g')
    if 'network_d' in opt:
        check_pretrained_network(build_network_opt(opt['network_d'], f'{opt_path}: network_d'), opt, opt_path, 'd')


def check_pretrained_network(net, opt, opt_path, which):
    """``path.pretrain_network_<which>`` ('g' or 'd'), if set, loads into ``net`` through the checked loader (weights
    only, bounded, finite) with ``param_key_<which>`` and ``strict_load_<which>``, as BasicSR will load it."""
    path_opt = opt.get('path') or {}
    pretrained = path_opt.get(f'pretrain_network_{which}')
    if not pretrained:
        return
    pretrained = os.path.expanduser(pretrained)
    if not os.path.isfile(pretrained):
        raise OptionError(f'{opt_path}: path.pretrain_network_{which} not found: {os.path.abspath(pretrained)}')
    check_weights_fit(net, pretrained, path_opt.get(f'param_key_{which}') or 'params',
                      path_opt.get(f'strict_load_{which}', True))


def check_trainable(opt, opt_path, net):
    """``train.trainable`` (DMLModel's parameters to train) names parameters of ``network_g``."""
    trainable = (opt.get('train') or {}).get('trainable') if isinstance(opt.get('train'), dict) else None
    if trainable is None:
        return
    if opt.get('model_type') != 'DMLModel':
        raise OptionError(f'{opt_path}: train.trainable is read by DMLModel only; model_type is '
                          f'{opt.get("model_type")!r} (remove train.trainable)')
    try:
        freeze_all_but(net, trainable)
    except ValueError as e:
        raise OptionError(f'{opt_path}: {e}') from None


def check_resumed_network_fits(net, state_path, experiment, opt_path):
    """The network file of the training state ``--auto_resume`` will take loads into ``network_g`` (not an experiment
    trained with another network under the same name)."""
    iteration = os.path.basename(state_path).split('.')[0]
    path = os.path.join(experiment, 'models', f'net_g_{iteration}.pth')
    if not os.path.isfile(path):
        return  # the resume skips that state (see training_resume.newest_intact_state)
    try:
        check_weights_fit(net, path)
    except CheckpointError as e:
        if 'does not fit' not in str(e):
            return  # an unreadable file: the resume skips it
        raise OptionError(f'{opt_path}: --auto_resume: {experiment} was trained with another network_g ({e}); '
                          'give this run another name, or move that experiment away') from None
