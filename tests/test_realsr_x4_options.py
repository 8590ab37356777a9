"""The x4 option files of the RealSR-crops tables train through ``basicsr train`` (shrunk to 2 iterations) on a tiny
fake datasets/: Table 1's degradation models and Table 2's SR rows, each with the training data and the online
degradation it names; the runs script runs each as it is; the closed-form rows test as they are."""
import csv

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import PROJECT_ROOT, make_realsr, run_cli, write_yaml
from dml_basicsr.archs import UniformKernelNet
from dml_basicsr.degradation.pretrained_models import pretrained_path
from dml_basicsr.utils.checkpoint import file_sha256

ONE_CAMERA_FILES = {'train_dml_realsr_crops_x4_canon.yml': 'Canon', 'train_dml_realsr_crops_x4_nikon.yml': 'Nikon'}
TABLE1_FILES = sorted(p.name for p in (PROJECT_ROOT / 'options').glob('train_*_realsr_crops_x4*.yml')
                      if p.name not in ONE_CAMERA_FILES)
DSGAN_X4 = 'model_zoo/realsr_x4_degradation/dsgan_realsrcrops_x4.pth'
DSGAN_LINE = f'Online DSGAN degradation from {DSGAN_X4} (sha256 '  # the committed DSGAN, by its bytes
REALSR_X4 = f"pretrained realsr-x4 (sha256 {file_sha256(pretrained_path('realsr-x4'))})"  # the log names the bytes
TABLE2_DEGRADATION_LINES = {
    'train_srx4_realsr_real.yml': None,
    'train_srx4_realsr_syndml.yml': f'Online DML degradation from {REALSR_X4}: scale 4, noise_sigma 5.0',
    'train_srx4_realsr_syndml_fittednoise.yml': f'Online DML degradation from {REALSR_X4}: scale 4, fitted noise '
                                                '(y, rgb)',
    'train_srx4_realsr_synbicubic.yml': "Online fixed-kernel degradation {'kernel': 'bicubic', 'scale': 4}: scale 4",
    'train_srx4_realsr_synrealesrgan.yml': "Online Real-ESRGAN second-order degradation {'scale': 4}: scale 4",
    'train_srx4_realsr_real_syndml.yml': f'Online DML degradation from {REALSR_X4}: scale 4, noise_sigma 5.0',
    'train_srx4_realsr_syndsgan.yml': DSGAN_LINE,
    'train_srx4_realsr_real_syndsgan.yml': DSGAN_LINE,
}
TABLE2_FILES = sorted(p.name for p in (PROJECT_ROOT / 'options').glob('train_srx4_realsr_*.yml'))
SCENES = (1, 2, 13, 14, 25, 28, 30, 31, 32)  # 1-30 train (2, 13, 14, 25, 28: the adaptation's 5 pairs), 31-35 validate


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    """A project folder whose datasets/ links to fake RealSR V3 x4 crops (96x96 HR) and two Urban100 photos, as
    scripts/link_datasets.sh links the real ones."""
    root = tmp_path_factory.mktemp('realsr_x4')
    rng = np.random.default_rng(0)
    for cam in ('Canon', 'Nikon'):
        folder = root / 'data' / 'RealSR_V3_x4_crops' / cam / 'Train' / '4'
        folder.mkdir(parents=True)
        for number in SCENES:
            hr = cv2.GaussianBlur(rng.integers(30, 220, (96, 96, 3)).astype(np.uint8), (5, 5), 1.0)
            cv2.imwrite(str(folder / f'{cam}_{number:03d}_HR.png'), hr)
            cv2.imwrite(str(folder / f'{cam}_{number:03d}_LR4.png'), cv2.resize(hr, (24, 24),
                                                                                  interpolation=cv2.INTER_AREA))
    urban = root / 'data' / 'Urban100_HR'
    urban.mkdir(parents=True)
    for i in (1, 2):
        cv2.imwrite(str(urban / f'img_{i:03d}.png'), rng.integers(0, 255, (100, 120, 3)).astype(np.uint8))
    (root / 'project' / 'datasets').mkdir(parents=True)
    for name in ('RealSR_V3_x4_crops', 'Urban100_HR'):
        (root / 'project' / 'datasets' / name).symlink_to(root / 'data' / name)
    (root / 'project' / 'model_zoo').symlink_to(PROJECT_ROOT / 'model_zoo')  # the committed models rows read
    return root / 'project'


def shrink(opt, gt_size):
    train = opt['datasets']['train']
    train.update(gt_size=gt_size, batch_size_per_gpu=2, num_worker_per_gpu=0, dataset_enlarge_ratio=2)
    net = opt['network_g']
    if net['type'] == 'MSRResNet':
        net.update(num_feat=8, num_block=1)
    elif 'num_feat' in net:
        net['num_feat'] = 4
    if 'network_d' in opt:  # DSGAN: LPIPS's AlexNet needs LR crops of 64 px (tests/test_dsgan_model.py keeps it)
        opt['network_d']['num_feat'] = 4
        opt['train']['lpips_weight'] = 0
    opt['train']['total_iter'] = 2
    opt['train']['scheduler']['milestones'] = [1]
    opt['val']['val_freq'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    return opt


def train(project, name, gt_size):
    with open(PROJECT_ROOT / 'options' / name) as f:
        opt = shrink(yaml.safe_load(f), gt_size)
    proc = run_cli(['train', '-opt', str(write_yaml(project / f'shrunk_{name}', opt))], cwd=project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = project / 'experiments' / opt['name']
    assert (exp / 'models' / 'net_g_2.pth').is_file()
    with open(exp / 'metrics_RealSRcrops_val.csv') as f:
        rows = [row for row in csv.DictReader(f) if row['iter'] == '2']
    return opt, exp, rows


def test_the_rows_are_shipped():
    assert TABLE2_FILES == sorted(TABLE2_DEGRADATION_LINES)
    assert TABLE1_FILES == ['train_directkpn_realsr_crops_x4.yml', 'train_directnet_realsr_crops_x4.yml',
                            'train_dml_realsr_crops_x4.yml', 'train_dml_realsr_crops_x4_m16.yml',
                            'train_dml_realsr_crops_x4_m4.yml', 'train_dsgan_realsr_crops_x4.yml',
                            'train_uniformkernel_realsr_crops_x4.yml']


def test_the_runs_script_runs_each_option_file_as_it_is():
    """scripts/realsr_x4_runs.sh: one line NAME OPTION_FILE per table row, NAME the file's own name:, no overrides."""
    text = (PROJECT_ROOT / 'scripts' / 'realsr_x4_runs.sh').read_text()
    runs = dict(line.strip().strip('"').split() for line in text.split('RUNS=(')[1].split('\n)')[0].splitlines()[1:])
    assert sorted(path.split('/')[1] for path in runs.values()) == sorted(TABLE1_FILES + TABLE2_FILES)
    for name, path in runs.items():
        with open(PROJECT_ROOT / path) as f:
            assert yaml.safe_load(f)['name'] == name, path
    assert '--force_yml name=' not in text


@pytest.mark.parametrize('m', [4, 16])
def test_the_basis_count_rows_differ_from_m8_in_name_and_num_basis_only(m):
    with open(PROJECT_ROOT / 'options' / 'train_dml_realsr_crops_x4.yml') as f:
        m8 = yaml.safe_load(f)
    with open(PROJECT_ROOT / 'options' / f'train_dml_realsr_crops_x4_m{m}.yml') as f:
        other = yaml.safe_load(f)
    assert other['name'] == f'RealSRx4_DML-M{m}' and other['network_g']['num_basis'] == m
    m8['network_g']['num_basis'], m8['name'] = m, other['name']
    assert other == m8


@pytest.mark.parametrize('name', TABLE1_FILES)
def test_table1_option_file_trains_on_the_crops(project, name):
    opt, _, rows = train(project, name, gt_size=32)
    assert opt['datasets']['train']['id_range'] == [1, 30] and opt['datasets']['val']['id_range'] == [31, 35]
    assert sorted(row['image'] for row in rows) == [f'{cam}_{n:03d}_HR' for cam in ('Canon', 'Nikon')
                                                    for n in (31, 32)]


@pytest.mark.parametrize('name', TABLE2_FILES)
def test_table2_option_file_trains_on_the_crops(project, name):
    opt, exp, rows = train(project, name, gt_size=80)  # Real-ESRGAN's filters need HR sides >= 76 at x4
    log = ''.join(p.read_text() for p in exp.glob('train_*.log'))
    expected = TABLE2_DEGRADATION_LINES[name]
    assert (expected in log) if expected else 'degradation from' not in log and 'degradation {' not in log
    assert sorted(row['image'] for row in rows) == [f'{cam}_{n:03d}_LR4' for cam in ('Canon', 'Nikon')
                                                    for n in (31, 32)]
    for row in rows:  # the published real-world protocol: PSNR/SSIM on Y without crop, LPIPS
        assert 0 < float(row['psnr']) < 100 and 0 < float(row['ssim']) <= 1 and 0 <= float(row['lpips']) < 1
    assert opt['val']['metrics']['psnr']['crop_border'] == 0 and opt['val']['metrics']['psnr']['test_y_channel']


@pytest.mark.parametrize('name', sorted(ONE_CAMERA_FILES))
def test_one_camera_option_files_train_and_validate_on_their_camera_only(project, name):
    """The sources of the adaptation study (docs/adapt.md): one camera's 001-030 train, its 031-035 validate."""
    with open(PROJECT_ROOT / 'options' / name) as f:
        opt = shrink(yaml.safe_load(f), 32)
    proc = run_cli(['train', '-opt', str(write_yaml(project / f'shrunk_{name}', opt))], cwd=project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    camera = ONE_CAMERA_FILES[name]
    with open(project / 'experiments' / opt['name'] / f'metrics_RealSRcrops_{camera}_val.csv') as f:
        images = sorted(row['image'] for row in csv.DictReader(f) if row['iter'] == '2')
    assert images == [f'{camera}_031_HR', f'{camera}_032_HR']
    with open(PROJECT_ROOT / 'options' / 'train_dml_realsr_crops_x4.yml') as f:
        both = yaml.safe_load(f)
    with open(PROJECT_ROOT / 'options' / name) as f:
        one = yaml.safe_load(f)
    assert one['train'] == both['train'] and one['network_g'] == both['network_g']  # the same budget and model


NIKON5_DEGRADATION_LINES = {
    'train_srx4_nikon5_a-adapted.yml': 'Online DML degradation from '
                                       'model_zoo/realsr_x4_adapt/dml_x4_canononly_adapted_nikon_k5.pth (sha256 ',
    'train_srx4_nikon5_b-unadapted.yml': 'Online DML degradation from model_zoo/realsr_x4_adapt/dml_x4_canononly.pth '
                                         '(sha256 ',
    'train_srx4_nikon5_c-synbicubic.yml': "Online fixed-kernel degradation {'kernel': 'bicubic', 'scale': 4}",
    'train_srx4_nikon5_d-synleastsquares.yml': 'Online DML degradation from '
                                               'model_zoo/realsr_x4_adapt/leastsquares_nikon_k5.pth (sha256 ',
    'train_srx4_nikon5_e-real.yml': None,
}


def test_the_adaptation_sr_rows_are_shipped():
    assert sorted(p.name for p in (PROJECT_ROOT / 'options').glob('train_srx4_nikon5_*.yml')) == sorted(
        NIKON5_DEGRADATION_LINES)


@pytest.mark.parametrize('name', sorted(NIKON5_DEGRADATION_LINES))
def test_adaptation_sr_option_file_trains_and_validates_on_nikon(project, name):
    """The SR rows of docs/adapt.md: each trains (shrunk) with the degradation it names, on the 5 Nikon pairs' HR
    (and Urban100) or on the 5 pairs themselves, and validates on Nikon 031-035 only."""
    with open(PROJECT_ROOT / 'options' / name) as f:
        opt = shrink(yaml.safe_load(f), 80)
    proc = run_cli(['train', '-opt', str(write_yaml(project / f'shrunk_{name}', opt))], cwd=project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = project / 'experiments' / opt['name']
    log = ''.join(p.read_text() for p in exp.glob('train_*.log'))
    expected = NIKON5_DEGRADATION_LINES[name]
    assert (expected in log) if expected else 'degradation from' not in log and 'degradation {' not in log
    with open(exp / 'metrics_RealSRcrops_val.csv') as f:
        images = sorted(row['image'] for row in csv.DictReader(f) if row['iter'] == '2')
    assert images == ['Nikon_031_LR4', 'Nikon_032_LR4']


CLOSED_FORM_FILES = ('test_kernels_realsr_crops_x4.yml', 'test_gaussian_realsr_crops_x4.yml',
                     'test_leastsquares_realsr_crops_x4.yml')


def test_the_closed_form_rows_test_as_they_are(tmp_path):
    """Table 1's bicubic, Gaussian and least-squares rows: each option file tests by itself (no --force_yml) into
    results/<its name>/, the least-squares one from the checkpoint scripts/kernel_baselines.py writes."""
    make_realsr(tmp_path / 'datasets' / 'RealSR_V3_x4_crops', ids=(31, 32), size=(128, 128))
    fit = tmp_path / 'experiments' / 'RealSRx4_KernelFit'
    fit.mkdir(parents=True)
    torch.save({'params': UniformKernelNet(num_in_ch=1, kernel_size=15, scale=4).state_dict()},
               fit / 'net_g_leastsquares.pth')
    means = {}
    for name in CLOSED_FORM_FILES:
        proc = run_cli(['test', '-opt', str(PROJECT_ROOT / 'options' / name)], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        with open(PROJECT_ROOT / 'options' / name) as f:
            folder = tmp_path / 'results' / yaml.safe_load(f)['name']
        with open(folder / 'metrics_RealSRcrops_val.csv') as f:
            rows = list(csv.DictReader(f))
        assert sorted(row['image'] for row in rows) == [f'{cam}_{n:03d}_HR' for cam in ('Canon', 'Nikon')
                                                        for n in (31, 32)]
        means[name] = np.mean([float(row['psnr']) for row in rows])
    assert len(set(means.values())) == 3  # three different kernels
