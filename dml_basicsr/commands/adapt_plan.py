"""What ``basicsr adapt`` trains and records: the BasicSR option file of the fine-tuning, the plan that a
``--auto_resume`` must match, and the record written beside the adapted model."""
import os

from dml_basicsr.degradation.camera_pairs import WHOLE
from dml_basicsr.degradation.lr_fidelity import METRICS
from dml_basicsr.utils.checkpoint import file_sha256

EXPERIMENT = 'adapt'
TRAIN_SET, HELD_OUT_SET = 'adapt_train', 'adapt_heldout'
# What --train names: the parameter-name prefixes of DMLNet that are fine-tuned (DMLModel's train.trainable).
TRAINABLE = {'all': None, 'basis': ['basis'], 'last-layer': ['weight_net.conv_last'],
             'basis+last-layer': ['basis', 'weight_net.conv_last']}
# What --augment names: BasicSR's use_hflip / use_rot of the training patches.
AUGMENTS = ('none', 'flip')


def dataset_section(name, items, color, **extra):
    """An AdaptationPairsDataset section of ``items`` [(pair, columns)] (one columns band for all)."""
    columns = items[0][1]
    return dict(name=name, type='AdaptationPairsDataset', pairs=[[p.hr_path, p.lr_path] for p, _ in items],
                columns=list(columns), color=color, io_backend=dict(type='disk'), cache=True, cache_max_gb=2, **extra)


def fold_name(number):
    """The experiment of the leave-one-out fold ``number`` (1-based)."""
    return f'{EXPERIMENT}_fold{number}'


def training_options(plan, source_path, run):
    """The BasicSR option dict of one fine-tuning ``run`` (name, train items, held-out items; no validation when
    none is held out) of ``plan`` (see :func:`make_plan`)."""
    budget, net = plan['budget'], plan['source']['network_g']
    iters, val_freq = budget['iterations'], budget['val_freq']
    color = 'y' if net['num_in_ch'] == 1 else None
    flip = budget.get('augment', 'none') == 'flip'
    name, train_items, held_items = run
    enlarge = max(1, -(-iters * budget['batch_size'] // len(train_items)))  # one epoch covers the run
    datasets = dict(train=dataset_section(TRAIN_SET, train_items, color, gt_size=budget['gt_size'], use_hflip=flip,
                                          use_rot=flip, num_worker_per_gpu=0, batch_size_per_gpu=budget['batch_size'],
                                          dataset_enlarge_ratio=enlarge, prefetch_mode=None))
    if held_items:
        datasets['val'] = dataset_section(HELD_OUT_SET, held_items, color)
    train = dict(ema_decay=0, optim_g=dict(type='Adam', lr=budget['lr'], weight_decay=0, betas=[0.9, 0.999]),
                 scheduler=dict(type='MultiStepLR', milestones=[iters], gamma=1.0), total_iter=iters,
                 warmup_iter=-1, pixel_opt=dict(type='MSELoss', loss_weight=1.0, reduction='mean'))
    if TRAINABLE[budget['train']] is not None:
        train['trainable'] = TRAINABLE[budget['train']]
    return dict(
        name=name, model_type='DMLModel', scale=net['scale'], num_gpu=budget['num_gpu'],
        manual_seed=budget['seed'],
        datasets=datasets,
        network_g=dict(type='DMLNet', **net),
        path=dict(pretrain_network_g=os.path.abspath(source_path), strict_load_g=True, param_key_g='params',
                  resume_state=None),
        train=train,
        val=dict(val_freq=val_freq, save_img=False, metrics=METRICS),
        logger=dict(print_freq=1, save_checkpoint_freq=val_freq, use_tb_logger=False,
                    wandb=dict(project=None, resume_id=None)),
        dist_params=dict(backend='nccl', port=29500),
    )


def pair_record(pair, role, columns):
    return dict(name=pair.name, hr=os.path.abspath(pair.hr_path), lr=os.path.abspath(pair.lr_path),
                hr_sha256=file_sha256(pair.hr_path), lr_sha256=file_sha256(pair.lr_path), role=role,
                columns=list(columns))


def make_plan(source, pairs_dir, pairs, folds, budget):
    """What the run will do, as plain data: ``source`` (pretrained or checkpoint, sha256, network_g), the ``pairs``
    with their sha256 and roles, the budget and the BasicSR runs. ``folds`` [(train, held_out)] give the table: one
    fold is also the run that makes model.pth; several (leave-one-out) each get a run, then one more run trains
    model.pth on every pair. A ``--auto_resume`` continues a run only with the same plan."""
    if len(folds) == 1:
        (train_items, held_items), = folds
        runs = [(EXPERIMENT, train_items, held_items)]
        records = [pair_record(p, 'train', c) for p, c in train_items] + [pair_record(p, 'held-out', c)
                                                                          for p, c in held_items]
    else:
        whole = [(p, WHOLE) for p in pairs]
        runs = [(fold_name(i + 1), train, held) for i, (train, held) in enumerate(folds)] + [(EXPERIMENT, whole, [])]
        records = [pair_record(p, 'train; held out in turn (leave-one-out)', c) for p, c in whole]
    return dict(source=source, pairs_dir=os.path.abspath(pairs_dir), pairs=records, budget=budget,
                runs=[dict(name=name, train=[p.name for p, _ in train], held_out=[p.name for p, _ in held])
                      for name, train, held in runs],
                items=runs)


def plan_data(plan):
    """The plan without the in-memory pairs (what is written to ``adapt_plan.yml``)."""
    return {k: v for k, v in plan.items() if k != 'items'}


def first_difference(old, new, where=''):
    """The first key path where two plain-data trees differ, or None."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            found = first_difference(old.get(key), new.get(key), f'{where}.{key}' if where else str(key))
            if found:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            found = first_difference(a, b, f'{where}[{i}]')
            if found:
                return found
        return None
    return None if old == new else (where or 'the plan')
