"""The option values BasicSR reads, checked before it creates ``experiments/<name>/`` or ``results/<name>/``.

BasicSR reads most of them deep inside its pipelines: a missing ``num_gpu`` is a KeyError, ``val_freq: 0`` a
ZeroDivisionError at the first iteration, a metric key it does not know (``crop_boder``) a TypeError at the first
validation, hours into the run. Here each is one :class:`OptionError` naming the key and what is wrong:

* the sections and keys BasicSR reads (``num_gpu``, ``datasets``, ``network_g``, ``path``; for training ``train``,
  ``logger``, a ``train`` dataset, ``total_iter``, ``optim_g``, ``scheduler``);
* types and ranges: batch size, workers, enlarge ratio, ``gt_size``, iteration counts and frequencies (integers,
  also written as ``!!float 5e3``), learning rates (finite numbers > 0), optimizer, scheduler and loss types;
* the names BasicSR joins into paths: ``name`` and the datasets' names one path component, ``val.suffix`` a plain
  part of a file name; no ``path`` key that BasicSR would create a folder for, besides the ones it sets itself;
* consistency: ``model_type`` registered; ``network_g``'s scale against the data's, its input channels against the
  datasets' ``color``; each ``val.metrics`` entry's keys against what its metric function takes.
"""
import inspect
import math
import numbers

import torch

from basicsr.models import lr_scheduler
from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from dml_basicsr.utils.options import OptionError, did_you_mean, is_finite_number, is_int
from dml_basicsr.utils.output_folder import is_name_fragment

# What BasicSR 1.4.2's SRModel builds (BaseModel.get_optimizer / setup_schedulers); anything else is
# NotImplementedError when the model is built, after the experiment folder exists.
OPTIMIZERS = ('Adam',)
SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')
# The arguments that BasicSR's calculate_metric passes itself (the images), not from the option file.
METRIC_DATA_ARGS = ('img', 'img2')
# The keys of a metric section that BasicSR reads itself: the function, and whether higher or lower is better.
METRIC_BASICSR_KEYS = ('type', 'better')
# The path keys BasicSR's parse_options sets from ``name`` (basicsr train; basicsr test), overwriting the file's.
RUN_PATH_KEYS = {'train': ('experiments_root', 'models', 'training_states', 'log', 'visualization'),
                 'test': ('results_root', 'log', 'visualization')}
# BasicSR's make_exp_dirs creates the folder of every other path key, unless the key holds one of these.
NO_FOLDER_KEY_PARTS = ('strict_load', 'pretrain_network', 'resume', 'param_key')
# The longest run or dataset name: BasicSR adds _archived_<time> to an old run folder and writes
# train_<name>_<time>.log into it; a file name holds at most 255 bytes (NAME_MAX).
MAX_NAME_LENGTH = 200
# The schedulers BasicSR builds for each scheduler type (BaseModel.setup_schedulers): their arguments are the keys.
SCHEDULER_CLASSES = {'MultiStepLR': lr_scheduler.MultiStepRestartLR,
                     'MultiStepRestartLR': lr_scheduler.MultiStepRestartLR,
                     'CosineAnnealingRestartLR': lr_scheduler.CosineAnnealingRestartLR}
# The reductions of BasicSR's pixel losses (basicsr.losses.basic_loss._reduction_modes).
LOSS_REDUCTIONS = ('none', 'mean', 'sum')
# What BasicSR's train loop accepts as datasets.train.prefetch_mode.
PREFETCH_MODES = (None, 'cpu', 'cuda')
# The seeds numpy's random generator takes (BasicSR's set_random_seed seeds it with manual_seed).
MAX_SEED = 2 ** 32 - 1


def is_integer(value):
    """An integer, or a float with an integral value (BasicSR's option files write ``val_freq: !!float 5e3``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return isinstance(value, numbers.Integral) or (math.isfinite(value) and float(value).is_integer())


def check_integer(section, key, where, minimum, required=False):
    """``section[key]`` an integer >= ``minimum`` (absent: fine unless ``required``)."""
    if key not in section:
        if required:
            raise OptionError(f'{where}.{key} is missing')
        return
    value = section[key]
    if not is_integer(value) or value < minimum:
        raise OptionError(f'{where}.{key} must be an integer >= {minimum}, got {value!r}'
                          f'{" (a string: remove the quotes)" if isinstance(value, str) else ""}')


def check_int_range(section, key, where, minimum, maximum=None):
    """``section[key]``, if present, a Python integer in [minimum, maximum]."""
    if key not in section:
        return
    value = section[key]
    if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
        limit = f'in [{minimum}, {maximum}]' if maximum is not None else f'>= {minimum}'
        raise OptionError(f'{where}.{key} must be an integer {limit}, got {value!r}')


def check_number_range(section, key, where, minimum, maximum=None):
    """``section[key]``, if present, a finite number in [minimum, maximum] (>= minimum if ``maximum`` is None)."""
    if key not in section:
        return
    value = section[key]
    if not is_finite_number(value) or value < minimum or (maximum is not None and value > maximum):
        limit = f'>= {minimum}' if maximum is None else f'in [{minimum}, {maximum}]'
        raise OptionError(f'{where}.{key} must be a number {limit}, got {value!r}')


def check_positive_number(section, key, where):
    """``section[key]`` a finite number > 0 (a learning rate)."""
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        hint = ' (a string: write it as a number, e.g. 1.0e-4)' if isinstance(value, str) else ''
        raise OptionError(f'{where}.{key} must be a finite number > 0, got {value!r}{hint}')


def check_section(opt, key, where, what):
    """``opt[key]`` a mapping; OptionError saying what it is for if it is missing or not one."""
    if not isinstance(opt.get(key), dict):
        found = 'missing' if key not in opt else f'not a section (got {opt[key]!r})'
        raise OptionError(f'{where}: {key} is {found}: {what}')
    return opt[key]


def check_type(section, where, names, registry_name):
    """``section['type']`` one of ``names`` (a tuple, or a BasicSR registry)."""
    value = section.get('type')
    known = names if isinstance(names, tuple) else tuple(name for name, _ in names)
    if value not in known:
        hint = did_you_mean(str(value), known) or f' (one of: {", ".join(sorted(known))})'
        raise OptionError(f'{where}.type {value!r} is not a registered {registry_name}{hint}')


def check_option_values(opt, opt_path, command):
    """Every check of this module on the option dict ``opt`` (``--force_yml`` applied) of ``basicsr <command>``."""
    training = command == 'train'
    if 'num_gpu' not in opt:
        raise OptionError(f'{opt_path}: num_gpu is missing (BasicSR reads it: 0 for the CPU, a number, or auto)')
    if not (opt['num_gpu'] == 'auto' or (is_integer(opt['num_gpu']) and opt['num_gpu'] >= 0)):
        raise OptionError(f'{opt_path}: num_gpu must be auto or an integer >= 0, got {opt["num_gpu"]!r}')
    if opt['num_gpu'] != 'auto' and opt['num_gpu'] > torch.cuda.device_count():
        raise OptionError(f'{opt_path}: num_gpu {opt["num_gpu"]}, but this machine has {torch.cuda.device_count()} '
                          'CUDA device(s): use num_gpu: auto (CUDA when present, else the CPU) or 0')
    seed = opt.get('manual_seed')
    if seed is not None and not (is_int(seed) and 0 <= seed <= MAX_SEED):
        raise OptionError(f'{opt_path}: manual_seed must be an integer in [0, 2**32 - 1] (or absent: a random one), '
                          f'got {seed!r}')
    datasets = check_section(opt, 'datasets', opt_path, 'the data to train or test on')
    if 'manifest' not in opt:
        check_section(opt, 'network_g', opt_path, 'the network to train or test (its type and options)')
    if 'path' in opt and not isinstance(opt['path'], dict):
        raise OptionError(f'{opt_path}: path must be a section (pretrain_network_g, strict_load_g, resume_state), '
                          f'got {opt["path"]!r}')
    opt.setdefault('path', {})  # BasicSR reads opt['path'] and adds the experiment folders to it
    check_path_keys(opt['path'], opt_path, command)
    check_names(opt, opt_path)
    check_model_type(opt, opt_path)
    check_scale_given(opt, opt_path)
    check_dataset_values(datasets, opt_path, training)
    check_gt_sizes_fit_scale(opt, opt_path)
    if training:
        check_training_values(opt, opt_path)
    check_val_values(opt, opt_path, training)
    check_network_sizes(opt, opt_path)
    check_network_fits_data(opt, opt_path)


def check_folder_name(value, where):
    """A name BasicSR joins into a path (``experiments/<name>``, ``visualization/<dataset name>``): one plain path
    component, so that nothing it makes, renames or writes lands outside its folder; not hidden (the run lock is
    ``experiments/.<name>.lock``), and short enough for the file names BasicSR builds from it."""
    if not isinstance(value, str) or not value.strip() or value in ('.', '..') or '/' in value or '\\' in value \
            or '\0' in value:
        raise OptionError(f'{where} must be a plain name (one path component: no /, not . or ..), got {value!r}')
    if value.startswith('.'):
        raise OptionError(f'{where} must not start with . (run locks are .<name>.lock files), got {value!r}')
    if len(value) > MAX_NAME_LENGTH:
        raise OptionError(f'{where} has {len(value)} characters, at most {MAX_NAME_LENGTH} (BasicSR builds file '
                          'names such as <name>_archived_<time> from it)')


def check_path_keys(path, opt_path, command):
    """No key of the ``path`` section makes BasicSR create a folder (its ``make_exp_dirs`` makes one of every key
    without strict_load, pretrain_network, resume or param_key in it), except those it sets itself from ``name``
    for ``basicsr <command>`` (for an unknown command, those both set)."""
    own = RUN_PATH_KEYS.get(command, tuple(set(RUN_PATH_KEYS['train']) & set(RUN_PATH_KEYS['test'])))
    for key, value in path.items():
        if key not in own and not any(part in str(key) for part in NO_FOLDER_KEY_PARTS):
            raise OptionError(f'{opt_path}: path.{key}: basicsr {command or "train/test"} would create the folder '
                              f'{value!r} (BasicSR makes one of every path key but pretrain_network_*, strict_load_*, '
                              'param_key_* and resume_state); remove the key')


def check_names(opt, opt_path):
    """The experiment name and every dataset's name (which BasicSR reads) are plain names (see
    :func:`check_folder_name`); no two validation or test datasets share a name (their metrics would be pooled
    into one metrics_<name>.csv)."""
    if 'name' in opt or 'manifest' not in opt:
        check_folder_name(opt.get('name'), f'{opt_path}: name')
    seen = {}
    for phase, section in (opt.get('datasets') or {}).items():
        if not isinstance(section, dict):
            continue
        if 'name' not in section:
            raise OptionError(f'{opt_path}: datasets.{phase}.name is missing (BasicSR logs and saves under it)')
        check_folder_name(section['name'], f'{opt_path}: datasets.{phase}.name')
        if phase.split('_')[0] == 'train':  # a training set writes no metrics
            continue
        if section['name'] in seen:
            raise OptionError(f'{opt_path}: datasets.{phase}.name {section["name"]!r} is also the name of datasets.'
                              f'{seen[section["name"]]}: their metrics would be pooled into one file; rename one')
        seen[section['name']] = phase


def check_model_type(opt, opt_path):
    """``model_type`` given (BasicSR's build_model reads it; a manifest's rows give it) and registered."""
    if 'model_type' not in opt and 'manifest' not in opt:
        raise OptionError(f'{opt_path}: model_type is missing (e.g. DMLModel, SRModel, OnlineSynthesisSRModel)')
    model_type = opt.get('model_type', 'SRModel')
    try:
        MODEL_REGISTRY.get(model_type)
    except KeyError:
        known = [name for name, _ in MODEL_REGISTRY]
        hint = did_you_mean(str(model_type), known) or f' (registered: {", ".join(sorted(known))})'
        raise OptionError(f'{opt_path}: model_type {model_type!r} is not a registered model{hint}') from None


def check_scale_given(opt, opt_path):
    """The top-level ``scale`` given: BasicSR passes it to every dataset, which would take 1 without it (a manifest's
    rows give theirs)."""
    if 'scale' not in opt and 'manifest' not in opt:
        raise OptionError(f'{opt_path}: scale is missing (BasicSR gives it to the datasets: the x factor between HR '
                          'and LR)')
    if 'scale' in opt and not (is_int(opt['scale']) and opt['scale'] >= 1):
        raise OptionError(f'{opt_path}: scale must be an integer >= 1, got {opt["scale"]!r}')


def check_dataset_values(datasets, opt_path, training):
    for phase, section in datasets.items():
        where = f'{opt_path}: datasets.{phase}'
        if not isinstance(section, dict):
            raise OptionError(f'{where} must be a dataset section (type, dataroot, ...), got {section!r}')
        if phase.split('_')[0] == 'train':
            for key, minimum in (('batch_size_per_gpu', 1), ('num_worker_per_gpu', 0)):
                check_integer(section, key, where, minimum, required=True)
                if not isinstance(section[key], int):  # the DataLoader takes no 2.0
                    raise OptionError(f'{where}.{key} must be an integer, got {section[key]!r} (write '
                                      f'{int(section[key])})')
            check_integer(section, 'dataset_enlarge_ratio', where, 1)
            check_prefetch_mode(section, where)
        if 'gt_size' in section:
            check_integer(section, 'gt_size', where, 1)
        check_int_range(section, 'kernel_grid', where, 1)
    if training and not any(phase.split('_')[0] == 'train' for phase in datasets):
        raise OptionError(f'{opt_path}: datasets has no train section (phases: {", ".join(datasets) or "none"}): '
                          'basicsr train needs datasets.train')


def check_prefetch_mode(section, where):
    """A training dataset's ``prefetch_mode`` one BasicSR's train loop takes; cuda only with a CUDA device and
    ``pin_memory: true``."""
    mode = section.get('prefetch_mode')
    if mode not in PREFETCH_MODES:
        raise OptionError(f'{where}.prefetch_mode must be ~ (none), cpu or cuda, got {mode!r}')
    if mode == 'cuda' and not torch.cuda.is_available():
        raise OptionError(f'{where}.prefetch_mode cuda, but this machine has no CUDA device: use ~ or cpu')
    if mode == 'cuda' and section.get('pin_memory') is not True:
        raise OptionError(f'{where}.prefetch_mode cuda needs pin_memory: true (BasicSR refuses it otherwise)')


def crop_scale(opt, section):
    """The scale of a training dataset's HR patch against its LR one: its ``degradation_scale`` if it has one, else
    the top-level scale (1 on the HR grid)."""
    cls = DATASET_REGISTRY.get(section['type']) if section.get('type') in DATASET_REGISTRY else None
    scale_of = getattr(cls, 'degradation_scale', None)
    return scale_of(dict(section, scale=opt.get('scale', 1))) if scale_of else lr_scale(opt, section)


def check_gt_sizes_fit_scale(opt, opt_path):
    """Each training dataset's ``gt_size`` a multiple of its crop scale (:func:`crop_scale`): the crop at the first
    iteration would refuse it, after BasicSR made the experiment folder."""
    for phase, section in opt['datasets'].items():
        size = section.get('gt_size')
        if phase.split('_')[0] != 'train' or not is_integer(size) or not is_integer(opt.get('scale', 1)):
            continue
        scale = crop_scale(opt, section)
        if scale and size % scale:
            raise OptionError(f'{opt_path}: datasets.{phase}.gt_size {size} must be a multiple of the scale {scale} '
                              f'(e.g. {max(size // scale, 1) * scale})')


def check_training_values(opt, opt_path):
    train = check_section(opt, 'train', opt_path, 'basicsr train needs total_iter, optim_g and scheduler')
    logger = check_section(opt, 'logger', opt_path, 'basicsr train needs print_freq and save_checkpoint_freq')
    where = f'{opt_path}: train'
    check_integer(train, 'total_iter', where, 1, required=True)
    for key, section in train.items():
        if key.startswith('optim_') and isinstance(section, dict):
            check_optimizer(section, f'{where}.{key}')
        elif key.endswith('_opt') and isinstance(section, dict):
            check_loss(section, f'{where}.{key}')
    if 'optim_g' not in train:
        raise OptionError(f'{where}.optim_g is missing (e.g. {{type: Adam, lr: 1.0e-4}})')
    check_pixel_loss_given(opt, train, where)
    check_number_range(train, 'ema_decay', where, 0, 1)
    check_integer(train, 'warmup_iter', where, -1)
    scheduler = check_section(train, 'scheduler', where, 'e.g. {type: MultiStepLR, milestones: [..], gamma: 0.5}')
    check_scheduler(scheduler, f'{where}.scheduler')
    for key in ('print_freq', 'save_checkpoint_freq'):
        check_integer(logger, key, f'{opt_path}: logger', 1, required=True)
    check_wandb_has_tensorboard(opt, logger, opt_path)


def check_optimizer(section, where):
    """An optimizer section: Adam, a learning rate > 0, ``betas`` two numbers in [0, 1), ``weight_decay`` >= 0."""
    check_type(section, where, OPTIMIZERS, 'optimizer of BasicSR')
    check_positive_number(section, 'lr', where)
    betas = section.get('betas', (0.9, 0.999))
    if not (isinstance(betas, (list, tuple)) and len(betas) == 2 and all(is_finite_number(b) and 0 <= b < 1 for b in betas)):
        raise OptionError(f'{where}.betas must be two numbers in [0, 1) (e.g. [0.9, 0.99]), got {betas!r}')
    check_number_range(section, 'weight_decay', where, 0)


def check_loss(section, where):
    """A loss section: a registered ``type``, ``loss_weight`` a number, ``reduction`` one BasicSR's losses take."""
    check_type(section, where, LOSS_REGISTRY, 'loss')
    if 'loss_weight' in section and not is_finite_number(section['loss_weight']):
        raise OptionError(f"{where}.loss_weight must be a number, got {section['loss_weight']!r}")
    if 'reduction' in section and section['reduction'] not in LOSS_REDUCTIONS:
        raise OptionError(f"{where}.reduction must be none, mean or sum, got {section['reduction']!r}")


def check_pixel_loss_given(opt, train, where):
    """A model trained by SRModel's init_training_settings (SRModel, DMLModel, OnlineSynthesisSRModel) has
    ``pixel_opt`` or ``perceptual_opt``: without either BasicSR raises once the experiment folder exists."""
    model = MODEL_REGISTRY.get(opt.get('model_type', 'SRModel'))
    if model.init_training_settings is not SRModel.init_training_settings:
        return
    if not train.get('pixel_opt') and not train.get('perceptual_opt'):
        raise OptionError(f'{where}.pixel_opt is missing ({opt.get("model_type", "SRModel")} trains on it; e.g. '
                          '{type: MSELoss, loss_weight: 1.0, reduction: mean})')


def check_scheduler(scheduler, where):
    """A scheduler BasicSR builds, given exactly the arguments its class takes (``milestones`` for MultiStepLR,
    ``periods`` for CosineAnnealingRestartLR), ``gamma`` > 0 and as many restart weights as restarts or periods."""
    check_type(scheduler, where, SCHEDULERS, 'scheduler of BasicSR')
    params = inspect.signature(SCHEDULER_CLASSES[scheduler['type']]).parameters
    takes = [p for p in params if p not in ('optimizer', 'last_epoch')]
    for key in scheduler:
        if key != 'type' and key not in takes:
            raise OptionError(f"{where}: {scheduler['type']} takes no option '{key}'"
                              f"{did_you_mean(key, takes) or ' (it takes: ' + ', '.join(takes) + ')'}")
    for key in takes:
        if params[key].default is inspect.Parameter.empty and key not in scheduler:
            raise OptionError(f"{where}.{key} is missing ({scheduler['type']} needs it)")
    for key in ('milestones', 'periods', 'restarts'):
        values = scheduler.get(key)
        if values is not None and not (isinstance(values, list) and all(is_integer(v) and v >= 0 for v in values)):
            raise OptionError(f'{where}.{key} must be a list of iteration numbers (integers >= 0), got {values!r}')
    if 'gamma' in scheduler:
        check_positive_number(scheduler, 'gamma', where)
    check_restart_weights(scheduler, where)


def check_restart_weights(scheduler, where):
    """``restart_weights`` a list of numbers, one per period (CosineAnnealingRestartLR) or restart
    (MultiStepRestartLR), as BasicSR asserts."""
    weights = scheduler.get('restart_weights', [1])
    counted = 'periods' if 'periods' in scheduler else 'restarts'
    count = len(scheduler.get(counted, [0]))
    if not (isinstance(weights, list) and all(is_finite_number(w) for w in weights)) or len(weights) != count:
        raise OptionError(f'{where}.restart_weights must be a list of {count} number(s), one per {counted[:-1]}, '
                          f'got {weights!r}')


def check_wandb_has_tensorboard(opt, logger, opt_path):
    """``logger.wandb.project`` set only with ``logger.use_tb_logger: true`` (BasicSR asserts it, outside debug
    runs, after making the experiment folder)."""
    wandb = logger.get('wandb')
    project = wandb.get('project') if isinstance(wandb, dict) else None
    if project is not None and logger.get('use_tb_logger') is not True and 'debug' not in str(opt.get('name')):
        raise OptionError(f'{opt_path}: logger.wandb.project {project!r} needs logger.use_tb_logger: true (BasicSR '
                          'syncs wandb from tensorboard); set it, or remove the project')


def check_val_values(opt, opt_path, training):
    val = opt.get('val')
    if val is None:
        return
    if not isinstance(val, dict):
        raise OptionError(f'{opt_path}: val must be a section (val_freq, save_img, metrics), got {val!r}')
    if training:
        check_integer(val, 'val_freq', f'{opt_path}: val', 1, required=True)
    check_suffix(val.get('suffix'), f'{opt_path}: val.suffix')
    metrics = val.get('metrics') or {}
    if not isinstance(metrics, dict):
        raise OptionError(f'{opt_path}: val.metrics must be a section of named metrics, got {metrics!r}')
    for name, metric in metrics.items():
        check_metric(metric, f'{opt_path}: val.metrics.{name}')


def check_suffix(suffix, where):
    """``val.suffix`` (the end of the names of saved test pictures, ``<image>_<suffix>.png``) absent or a plain part
    of a file name: no path separator, no ``..``, not absolute."""
    plain = isinstance(suffix, (str, int)) and not isinstance(suffix, bool) and is_name_fragment(str(suffix))
    if suffix is not None and not plain:
        raise OptionError(f'{where} must be a plain part of a file name (no / or \\, no .., not absolute), got '
                          f'{suffix!r}')


def check_metric(metric, where):
    """A metric section: a registered ``type`` whose function takes every other key and gets all it needs;
    ``crop_border`` an integer >= 0."""
    if not isinstance(metric, dict):
        raise OptionError(f'{where} must be a section ({{type: calculate_psnr, crop_border: 0}}), got {metric!r}')
    check_type(metric, where, METRIC_REGISTRY, 'metric')
    check_int_range(metric, 'crop_border', where, 0)
    params = inspect.signature(METRIC_REGISTRY.get(metric['type'])).parameters
    named = [p for p in params if p not in METRIC_DATA_ARGS and params[p].kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    if metric.get('better', 'higher') not in ('higher', 'lower'):
        raise OptionError(f"{where}.better must be higher or lower, got {metric['better']!r}")
    for key in metric:
        if key not in METRIC_BASICSR_KEYS and key not in named:
            hint = did_you_mean(key, named) or f' (it takes: {", ".join(named)})'
            raise OptionError(f"{where}: {metric['type']} takes no option '{key}'{hint}")
    missing = [p for p in named if params[p].default is inspect.Parameter.empty and p not in metric]
    if missing:
        raise OptionError(f"{where}: {metric['type']} needs {', '.join(missing)}")


def network_option(network_opt, key):
    """``network_g[key]``, or the default of its arch's constructor; None if neither."""
    if key in network_opt:
        return network_opt[key]
    try:
        parameter = inspect.signature(ARCH_REGISTRY.get(network_opt.get('type'))).parameters.get(key)
    except (KeyError, TypeError, ValueError):
        return None
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def dataset_channels(section):
    """The channels a dataset section gives: 1 for ``color: y`` (or a dataset whose default is Y), else 3."""
    cls = DATASET_REGISTRY.get(section['type']) if section.get('type') in DATASET_REGISTRY else None
    color = section.get('color', getattr(cls, 'DEFAULT_COLOR', None))
    return 1 if color == 'y' else 3


def lr_scale(opt, section):
    """The scale between a dataset's HR and the LR the network makes or reads: 1 on the HR grid (``lr_grid: hr``)."""
    return 1 if section.get('lr_grid') == 'hr' else int(opt.get('scale', 1))


def is_size_key(key):
    """A network option that counts or sizes something (num_feat, num_block, kernel_size, ...)."""
    return str(key).startswith('num_') or str(key).endswith('_size')


def check_network_sizes(opt, opt_path):
    """The integer sizes of ``network_g`` and ``network_d`` (:func:`is_size_key`) >= 1: a network of 0 features
    builds, then fails at its first forward pass, after the experiment folder exists."""
    for which in ('network_g', 'network_d'):
        network_opt = opt.get(which)
        if not isinstance(network_opt, dict):
            continue
        for key, value in network_opt.items():
            if is_size_key(key) and is_int(value) and value < 1:
                raise OptionError(f'{opt_path}: {which}.{key} must be an integer >= 1, got {value!r}')


def check_network_fits_data(opt, opt_path):
    """``network_g``'s input channels against each dataset's ``color``; its scale (a DML model's ``scale``, an SR
    network's ``upscale``) against the data's."""
    network_opt = opt.get('network_g')
    if not isinstance(network_opt, dict):
        return
    in_ch = network_option(network_opt, 'num_in_ch')
    for phase, section in opt['datasets'].items():
        channels = dataset_channels(section)
        if is_integer(in_ch) and in_ch != channels:
            color = section.get('color')
            raise OptionError(f'{opt_path}: network_g.num_in_ch {in_ch}, but datasets.{phase} gives {channels}-channel '
                              f'images (color {color}): set color: {"y" if in_ch == 1 else "rgb"} or num_in_ch: '
                              f'{channels}')
    scale_key = 'scale' if 'scale' in network_opt and 'upscale' not in network_opt else 'upscale'
    net_scale = network_option(network_opt, scale_key)
    train = next((s for p, s in opt['datasets'].items() if p.split('_')[0] == 'train'), None)
    if not is_integer(net_scale) or train is None or 'scale' not in opt:
        return
    expected = lr_scale(opt, train) if scale_key == 'scale' else int(opt['scale'])
    if scale_key == 'scale' and 'degradation' in opt:
        return  # a DML-like network_g of an online model: its scale is checked against the degradation's
    if net_scale != expected:
        raise OptionError(f'{opt_path}: network_g.{scale_key} {net_scale}, but the data are x{expected} (scale '
                          f'{opt["scale"]}, lr_grid {train.get("lr_grid", "lr")}): use {scale_key}: {expected}')
