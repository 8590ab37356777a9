"""dml_basicsr.commands.preflight: the checks run before BasicSR writes an experiment or results folder; unknown
keys (with the closest valid one), the network, its pretrained weights and the degradation's checkpoint (present, of
the right arch and scale, finite), a batch that an epoch cannot fill, a resumed experiment of another network, run
folders that are or hold links or overlap a dataset, and a crop_border larger than a validation image, each one line.
"""
import os
import shutil

import pytest
import torch

from conftest import (PROJECT_ROOT, expect_option_error, one_line, realsr_train_options, run_cli, save_dmlnet,
                      sr_options, tiny_dml_options, tiny_trained_run, tree, write_yaml)
from dml_basicsr.utils.checkpoint import load_state_dict


@pytest.mark.parametrize('section, key, value, suggestion', [
    ('train', 'gt_sise', 32, 'gt_size'),
    ('train', 'use_hflp', True, 'use_hflip'),
    ('val', 'kernel_gird', 2, 'kernel_grid'),
])
def test_unknown_dataset_keys_are_errors(tmp_path, section, key, value, suggestion):
    opt = tiny_dml_options('typo')
    opt['datasets'][section][key] = value
    expect_option_error(tmp_path, opt, f'datasets.{section}', f"unknown option '{key}' of SyntheticLensDataset",
                        f"did you mean '{suggestion}'?")


def test_city100_id_range_typo_is_an_error(tmp_path):
    opt = tiny_dml_options('typo')
    opt['datasets']['train'] = dict(name='City100_train', type='City100Dataset', dataroot=str(tmp_path / 'City100'),
                                    id_rnage=[1, 4], gt_size=32, color='y', batch_size_per_gpu=2,
                                    num_worker_per_gpu=0, use_shuffle=True, prefetch_mode=None)
    expect_option_error(tmp_path, opt, "unknown option 'id_rnage' of City100Dataset", "did you mean 'id_range'?")


def test_network_and_degradation_keys_and_values_are_checked(tmp_path):
    opt = tiny_dml_options('typo')
    opt['network_g']['num_basiss'] = 3
    expect_option_error(tmp_path, opt, "network_g: unknown option 'num_basiss' of DMLNet", "'num_basis'")
    opt['network_g'] = dict(opt['network_g'], num_basis=-1)
    del opt['network_g']['num_basiss']
    expect_option_error(tmp_path, opt, 'network_g.num_basis must be an integer >= 1, got -1')
    opt['network_g'] = dict(opt['network_g'], type='DMLNett', num_basis=3)
    expect_option_error(tmp_path, opt, "network_g: type 'DMLNett' is not a registered network", "'DMLNet'")

    sr = sr_options(tmp_path, save_dmlnet(tmp_path / 'dml_x2.pth'))
    sr['degradation']['noise_sigmaa'] = 5
    expect_option_error(tmp_path, sr, "degradation: unknown option 'noise_sigmaa'", "did you mean 'noise_sigma'?")
    sr = sr_options(tmp_path, save_dmlnet(tmp_path / 'dml_x2.pth'))
    sr['datasets']['train']['real'] = dict(type='RealSRDataset', dataroot='nowhere', camera=['Canon'])
    expect_option_error(tmp_path, sr, "datasets.train.real: unknown option 'camera' of RealSRDataset", "'cameras'")


def test_shipped_option_files_use_only_known_keys():
    from basicsr.utils.registry import DATASET_REGISTRY

    from dml_basicsr.archs.network_loading import build_network_opt
    from dml_basicsr.commands.preflight import DEGRADATION_KEYS, check_dataset_keys
    from dml_basicsr.utils.options import check_known_keys, load_options

    files = sorted((PROJECT_ROOT / 'options').glob('*.yml'))
    assert len(files) >= 30
    for path in files:
        opt = load_options(str(path))
        for phase, section in opt['datasets'].items():
            check_dataset_keys(DATASET_REGISTRY.get(section['type']), dict(section, phase='x'), f'{path}: {phase}')
        check_known_keys(opt.get('degradation') or {}, DEGRADATION_KEYS, str(path), 'degradation')
        if 'manifest' not in opt:  # a manifest's rows give the networks (tests/test_model_manifest.py)
            build_network_opt(opt['network_g'], str(path))


def test_degradation_checkpoint_of_the_wrong_scale_arch_or_values(tmp_path):
    line = expect_option_error(tmp_path, sr_options(tmp_path, save_dmlnet(tmp_path / 'dml_x4.pth', scale=4)),
                               'dml_x4.pth is a x4 DMLNet', 'needs x2 LR patches')
    assert 'datasets.train (OnlineSynthesisDataset, scale 2, lr_grid lr)' in line
    vdsr = tmp_path / 'vdsr.pth'
    torch.save({'params': torch.nn.Conv2d(1, 1, 3).state_dict()}, vdsr)
    expect_option_error(tmp_path, sr_options(tmp_path, vdsr), 'vdsr.pth: not a DMLNet state dict')
    expect_option_error(tmp_path, sr_options(tmp_path, save_dmlnet(tmp_path / 'nan.pth', nan=True)),
                        'nan.pth: 1 of its', 'NaN/inf')


def test_fixed_kernel_degradation_is_checked_like_a_checkpoint(tmp_path):
    opt = sr_options(tmp_path, 'unused')
    opt['degradation'] = dict(fixed_kernel=dict(kernel='gaussian', sigma=1.5, scale=1), noise_sigma=5)
    expect_option_error(tmp_path, opt, "degradation: fixed_kernel {", 'is a x1 degradation', 'needs x2 LR patches',
                        'use a degradation of scale 2')
    opt['degradation'] = dict(fixed_kernel=dict(kernel='gauss', scale=2))
    expect_option_error(tmp_path, opt, 'degradation.fixed_kernel:', "kernel must be 'bicubic'")
    opt['degradation'] = dict(fixed_kernel=dict(kernel='gaussian', scale=2), checkpoint='x.pth')
    expect_option_error(tmp_path, opt, 'it has checkpoint, fixed_kernel')


def test_pretrained_network_is_checked_before_the_results_folder(tmp_path):
    opt = tiny_dml_options('late')
    opt['path'] = dict(pretrain_network_g='experiments/none/models/net_g_9.pth', strict_load_g=True)
    expect_option_error(tmp_path, opt, 'path.pretrain_network_g not found', 'net_g_9.pth', command='test')
    opt['path']['pretrain_network_g'] = str(save_dmlnet(tmp_path / 'other.pth'))
    opt['network_g']['num_basis'] = 5  # the checkpoint has 3 basis kernels
    expect_option_error(tmp_path, opt, 'other.pth: does not fit DMLNet', 'size mismatch for basis', command='test')


@pytest.mark.parametrize('dataset, batch, ratio, world, per_epoch', [
    ('lens', 9, 4, None, 8),  # 2 embedded photos x 4
    ('lens', 3, 1, None, 2),
    ('lens', 5, 4, '2', 4),  # 8 items over 2 processes
    ('realsr', 7, 1, None, 6),
    ('syndml', 4, 1, None, 2),
])
def test_a_batch_larger_than_an_epoch_is_refused_up_front(tmp_path, monkeypatch, dataset, batch, ratio, world,
                                                        per_epoch):
    if world:
        monkeypatch.setenv('WORLD_SIZE', world)
    if dataset == 'realsr':
        opt = realsr_train_options(tmp_path, batch_size_per_gpu=batch, dataset_enlarge_ratio=ratio)
    else:
        opt = tiny_dml_options('bigbatch')
        if dataset == 'syndml':
            opt['model_type'] = 'OnlineSynthesisSRModel'
        opt['datasets']['train'].update(batch_size_per_gpu=batch, dataset_enlarge_ratio=ratio)
        if dataset == 'syndml':
            opt['datasets']['train'] = dict(name='s', type='OnlineSynthesisDataset', images=['camera', 'brick'],
                                            gt_size=32, color='y', batch_size_per_gpu=batch,
                                            dataset_enlarge_ratio=ratio, num_worker_per_gpu=0)
            opt['degradation'] = {'fixed_kernel': {'kernel': 'gaussian', 'sigma': 1.0, 'scale': 2}}
            opt['network_g'] = {'type': 'VDSR', 'num_in_ch': 1, 'num_feat': 8, 'num_conv': 3, 'upscale': 2}
    expect_option_error(tmp_path, opt, 'datasets.train: batch_size_per_gpu', f'larger than the {per_epoch} items',
                        '0 iterations')


def test_a_batch_of_exactly_one_epoch_trains(tmp_path):
    opt = realsr_train_options(tmp_path, batch_size_per_gpu=6)
    opt['train']['total_iter'] = 2
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'opt.yml', opt))], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    load_state_dict(str(tmp_path / 'experiments' / 'bigbatch' / 'models' / 'net_g_2.pth'))


@pytest.mark.parametrize('section, fragment', [
    ({'pretrained': 'city100-nikon-x2', 'noise_sigma': float('nan')}, 'degradation.noise_sigma must be a finite'),
    ({'pretrained': 'city100-nikon-x2', 'noise_sigma': [3.0, float('inf')]}, 'degradation.noise_sigma must be'),
    ({'pretrained': 'city100-nikon-x2', 'clamp': 'yes'}, 'degradation.clamp must be true or false'),
    ({'fixed_kernel': {'kernel': 'gaussian', 'sigma': 0, 'scale': 2}}, 'sigma must be a finite number > 0'),
    ({'fixed_kernel': {'kernel': 'gaussian', 'sigma': -1.0, 'scale': 2}}, 'sigma must be a finite number > 0'),
    ({'fixed_kernel': {'kernel': 'gaussian', 'sigma': float('nan'), 'scale': 2}}, 'sigma must be a finite number'),
    ({'fixed_kernel': {'kernel': 'gaussian', 'sigma': 1.0, 'scale': 2, 'kernel_size': 4}},
     'kernel_size must be an odd integer'),
    ({'fixed_kernel': {'kernel': 'bicubic', 'scale': 5}}, 'scale must be 1, 2, 3 or 4'),
    ({'fixed_kernel': {'kernel': 'bicubic', 'scale': 2, 'noise_sigma': 1}}, 'noise_sigma'),
])
def test_option_file_numbers_that_make_garbage_are_refused_up_front(tmp_path, section, fragment):
    opt = tiny_dml_options('garbage')
    opt['model_type'] = 'OnlineSynthesisSRModel'
    opt['datasets']['train'] = dict(name='s', type='OnlineSynthesisDataset', images=['camera', 'brick'], gt_size=32,
                                    color='y', batch_size_per_gpu=2, num_worker_per_gpu=0)
    opt['degradation'] = section
    opt['network_g'] = {'type': 'VDSR', 'num_in_ch': 1, 'num_feat': 8, 'num_conv': 3, 'upscale': 2}
    expect_option_error(tmp_path, opt, fragment)


def test_resuming_with_another_network_is_one_line(tmp_path):
    opt_file = write_yaml(tmp_path / 'opt.yml', tiny_dml_options('resumed'))
    assert run_cli(['train', '-opt', str(opt_file)], cwd=tmp_path).returncode == 0
    before = tree(tmp_path / 'experiments')
    proc = run_cli(['train', '-opt', str(opt_file), '--auto_resume', '--force_yml', 'network_g:num_feat=16',
                    'train:total_iter=6'], cwd=tmp_path)
    line = one_line(proc, 'train', 2)
    assert '--auto_resume: experiments/resumed was trained with another network_g' in line and 'net_g_4.pth' in line
    assert tree(tmp_path / 'experiments') == before


def test_pretrained_weights_of_another_scale_are_one_line(tmp_path):
    save_dmlnet(tmp_path / 'x4.pth', scale=4)
    opt = tiny_dml_options('wrongscale')
    opt['network_g'].update(num_basis=3, kernel_size=7, num_feat=8)
    opt['path'] = {'pretrain_network_g': str(tmp_path / 'x4.pth'), 'strict_load_g': True}
    expect_option_error(tmp_path, opt, 'x4.pth: does not fit DMLNet', 'trained for scale 4')


# ------------------------------------------------------------------------------------------- the run's own folders


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    return tiny_trained_run(tmp_path_factory)


def move_and_link(work, rel):
    """Move ``work/rel`` to ``work/elsewhere/`` and leave a symbolic link to it in its place."""
    (work / 'elsewhere').mkdir(exist_ok=True)
    moved = work / 'elsewhere' / os.path.basename(rel)
    shutil.move(str(work / rel), str(moved))
    (work / rel).symlink_to(moved)


@pytest.mark.parametrize('rel', ['experiments/robust', 'experiments/robust/models',
                                 'experiments/robust/training_states/4.state',
                                 'experiments/robust/visualization/SkimageLensVal'])
def test_auto_resume_refuses_a_link_in_the_experiment_it_writes_into(trained, tmp_path, rel):
    work = tmp_path / 'work'
    shutil.copytree(trained, work, symlinks=True)
    move_and_link(work, rel)
    before = tree(work)
    proc = run_cli(['train', '-opt', 'robust.yml', '--auto_resume', '--force_yml', 'train:total_iter=6'], cwd=work)
    line = one_line(proc, 'train', 2)
    expected = ('the run folder experiments/robust is a symbolic link' if rel == 'experiments/robust' else
                f'{rel} is a symbolic link inside the run folder experiments/robust')
    assert expected in line, line
    assert tree(work) == before


def test_a_link_at_the_tensorboard_folder_is_refused(tmp_path):
    opt = tiny_dml_options('tb')
    opt['logger']['use_tb_logger'] = True
    (tmp_path / 'elsewhere').mkdir()
    (tmp_path / 'tb_logger').mkdir()
    (tmp_path / 'tb_logger' / 'tb').symlink_to(tmp_path / 'elsewhere')
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'opt.yml', opt))], cwd=tmp_path)
    assert 'the run folder tb_logger/tb is a symbolic link' in one_line(proc, 'train', 2)
    assert os.listdir(tmp_path / 'elsewhere') == [] and not (tmp_path / 'experiments').exists()


def test_a_link_inside_a_run_folder_that_basicsr_archives_is_no_concern(tmp_path, monkeypatch):
    from dml_basicsr.commands.preflight import check_run_folders
    from dml_basicsr.utils.output_folder import OutputFolderError
    opt = tiny_dml_options('old')
    (tmp_path / 'experiments' / 'old').mkdir(parents=True)
    (tmp_path / 'experiments' / 'old' / 'models').symlink_to(tmp_path)
    monkeypatch.chdir(tmp_path)  # the run folders are relative to the working folder
    check_run_folders(opt, 'opt.yml', 'train', auto_resume=False)  # BasicSR renames experiments/old first
    with pytest.raises(OutputFolderError, match='experiments/old/models is a symbolic link'):
        check_run_folders(opt, 'opt.yml', 'train', auto_resume=True)


@pytest.mark.parametrize('command, dataroot, how', [
    ('train', 'experiments/ovl', 'is the input experiments/ovl'),
    ('train', 'experiments/ovl/hr', 'holds the input experiments/ovl/hr'),
    ('train', '.', 'lies inside the input .'),
    ('test', 'results/ovl', 'is the input results/ovl'),
])
def test_a_run_folder_that_overlaps_a_dataroot_is_refused(tmp_path, command, dataroot, how):
    opt = tiny_dml_options('ovl')
    opt['datasets']['val']['dataroot_gt'] = dataroot
    (tmp_path / dataroot).mkdir(parents=True, exist_ok=True)
    (tmp_path / dataroot / 'a.png').write_bytes(b'data')
    write_yaml(tmp_path / 'opt.yml', opt)
    before = tree(tmp_path)
    proc = run_cli([command, '-opt', 'opt.yml'], cwd=tmp_path)
    line = one_line(proc, command, 2)
    assert f'the run folder {"experiments" if command == "train" else "results"}/ovl {how} (a dataroot)' in line, line
    assert tree(tmp_path) == before


@pytest.mark.parametrize('command, key, rel, how', [
    ('train', 'pretrain_network_g', 'experiments/t1/models/net_g_2.pth', 'holds'),
    ('test', 'pretrain_network_g', 'results/t1/net.pth', 'holds'),
    ('train', 'degradation', 'experiments/t1/dml_x2.pth', 'holds'),
    ('train', 'pretrain_network_g', 'experiments/t1', 'is'),
])
def test_a_run_folder_that_overlaps_a_file_the_run_reads_is_refused(tmp_path, command, key, rel, how):
    """BasicSR archives (renames) an existing run folder before it loads the networks: one that is or holds a
    pretrained network or the degradation's checkpoint would lose it, then fail after writing."""
    opt = tiny_dml_options('t1')
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    if how == 'is':
        (tmp_path / rel).mkdir()
    if key == 'degradation':
        opt = sr_options(tmp_path, save_dmlnet(tmp_path / rel))
        opt.update(name='t1', degradation=dict(opt['degradation'], checkpoint=rel))
        what = 'degradation.checkpoint'
    else:
        if how == 'holds':
            save_dmlnet(tmp_path / rel)
        opt['path'] = {key: rel, 'strict_load_g': True}
        what = f'path.{key}'
    write_yaml(tmp_path / 'opt.yml', opt)
    before = tree(tmp_path)
    line = one_line(run_cli([command, '-opt', 'opt.yml'], cwd=tmp_path), command, 2)
    run_folder = rel.split('/')[0] + '/t1'
    assert f'the run folder {run_folder} {how} the input {rel} ({what})' in line, line
    assert tree(tmp_path) == before


def test_a_resumed_training_may_read_its_own_networks(tmp_path, monkeypatch):
    """With path.resume_state (or --auto_resume and a state) BasicSR writes into the experiment folder as it is, and
    loads its networks from it: no overlap there."""
    from dml_basicsr.commands.preflight import check_run_folders
    from dml_basicsr.utils.output_folder import OutputFolderError
    save_dmlnet(tmp_path / 'net.pth')
    (tmp_path / 'experiments' / 'r' / 'models').mkdir(parents=True)
    opt = tiny_dml_options('r')
    opt['path'] = {'pretrain_network_g': 'experiments/r/models/net_g_2.pth'}
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputFolderError, match=r'holds the input experiments/r/models/net_g_2.pth \(path.pretrain'):
        check_run_folders(opt, 'opt.yml', 'train')
    opt['path']['resume_state'] = 'experiments/r/training_states/2.state'
    check_run_folders(opt, 'opt.yml', 'train')


# ------------------------------------------------------------------------------------ crop_border of the metrics


def realsr_validated(tmp_path, border, model_type='DMLModel'):
    """The tiny DML options trained and validated on 48x48 RealSR pairs at x2 (24x24 LR), psnr's crop ``border``."""
    opt = realsr_train_options(tmp_path)
    opt['model_type'] = model_type
    opt['datasets']['val'] = dict(name='rv', type='RealSRDataset', dataroot=str(tmp_path / 'RealSR'), split='Train',
                                  color='y')
    opt['val']['metrics']['psnr']['crop_border'] = border
    return opt


def test_a_crop_border_that_leaves_nothing_of_a_validation_image_is_refused_before_training(tmp_path):
    expect_option_error(tmp_path, realsr_validated(tmp_path, 12), 'val.metrics.psnr.crop_border 12 leaves nothing '
                        'of the 24x24 LR image', 'Canon_001_LR2.png of datasets.val', 'at most 11')


def test_the_crop_border_is_checked_on_the_images_the_metric_compares(tmp_path):
    from dml_basicsr.commands.preflight import check_crop_borders
    from dml_basicsr.utils.options import OptionError
    check_crop_borders(realsr_validated(tmp_path, 11), 'opt.yml')  # DMLModel: LR 24x24 against LR
    shutil.rmtree(tmp_path / 'RealSR')
    check_crop_borders(realsr_validated(tmp_path, 23, 'SRModel'), 'opt.yml')  # an SR model: HR 48x48
    shutil.rmtree(tmp_path / 'RealSR')
    with pytest.raises(OptionError, match='crop_border 24 leaves nothing of the 48x48 HR image .*Canon_001_HR.png'):
        check_crop_borders(realsr_validated(tmp_path, 24, 'SRModel'), 'opt.yml')
