"""The scripts and option files behind the City100 results of docs/results.md: closed-form kernel fit, test options
of trained runs, crops; the GPU runs (options/train_city100gpu_*.yml) that scripts/city100_gpu_runs.sh runs as they are
and their whole-image tests (options/test_city100gpu_*.yml), the closed-form rows' test files."""
import csv
import importlib.util
import re

import numpy as np
import pytest
import torch
import yaml

from conftest import PROJECT_ROOT, make_city100, run_cli, write_yaml
from dml_basicsr.archs.network_loading import build_network_opt
from dml_basicsr.commands.preflight import check_option_file
from dml_basicsr.ops import gaussian_kernel
from dml_basicsr.ops.basis_conv import basis_responses


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / 'scripts' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('scale', [1, 2, 4])
def test_least_squares_fit_recovers_the_kernel_that_made_the_lr(monkeypatch, scale):
    baselines = load_script('kernel_baselines')
    torch.manual_seed(0)
    true_kernel = gaussian_kernel(15, 1.3, 0.9, theta=0.4, dtype=torch.float64) * 0.97
    pairs = []
    for _ in range(3):
        hr = torch.rand(1, 1, 96, 104, dtype=torch.float64)
        pairs.append((hr, basis_responses(hr, true_kernel[None], scale)[:, :, 0]))
    monkeypatch.setattr(baselines, 'training_pairs', lambda *args: iter(pairs))
    sigmas = [1.0, 1.1, 1.2]
    kernel, kernel_mse, gaussian_mse = baselines.fit('city100', 'unused', 1, 3, scale, 15, sigmas)
    assert torch.allclose(kernel, true_kernel, atol=1e-8)
    assert float(kernel_mse) < 1e-15
    assert gaussian_mse.shape == (3,) and bool((gaussian_mse > 1e-6).all())  # no isotropic one fits exactly


def test_least_squares_fit_picks_the_gaussian_that_made_the_lr(monkeypatch):
    baselines = load_script('kernel_baselines')
    hr = torch.rand(1, 1, 60, 60, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lr = basis_responses(hr, gaussian_kernel(15, 1.5, dtype=torch.float64)[None], 1)[:, :, 0]
    monkeypatch.setattr(baselines, 'training_pairs', lambda *args: iter([(hr, lr)]))
    sigmas = [1.3, 1.4, 1.5, 1.6]
    _, _, gaussian_mse = baselines.fit('city100', 'unused', 1, 1, 1, 15, sigmas)
    assert sigmas[int(gaussian_mse.argmin())] == 1.5 and float(gaussian_mse.min()) < 1e-20


def test_centre_crops_keep_the_lr_grid_phase():
    crops = load_script('city100_center_crops')
    img = np.arange(870 * 1218).reshape(870, 1218)
    crop = crops.center_crop(img, 640)
    top, left = divmod(int(crop[0, 0]), 1218)
    assert crop.shape == (640, 640) and top % 4 == 0 and left % 4 == 0
    assert abs(top - (870 - 640) / 2) < 4 and abs(left - (1218 - 640) / 2) < 4
    with pytest.raises(ValueError, match='smaller than the crop'):
        crops.center_crop(img[:100], 640)


# ------------------------------------------------------------------- the GPU runs: one complete option file each

OPTIONS = PROJECT_ROOT / 'options'
GPU_RUNS = sorted(OPTIONS.glob('train_city100gpu_*.yml'))
CROPS = 'datasets/City100_NikonD5500_center640'


def read_options(path):
    with open(path) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope='module')
def city100_project(tmp_path_factory):
    """A project folder whose datasets/City100_NikonD5500_center640 and datasets/City100_NikonD5500 link to tiny fake
    pairs (200x200, room for the 192x192 patches) of scenes 1, 2, 30, 31, 32."""
    root = tmp_path_factory.mktemp('city100gpu')
    make_city100(root / 'fake', ids=(1, 2, 30, 31, 32), size=(200, 200))
    (root / 'datasets').mkdir()
    for name in ('City100_NikonD5500_center640', 'City100_NikonD5500'):
        (root / 'datasets' / name).symlink_to(root / 'fake', target_is_directory=True)
    return root


def test_every_gpu_run_has_its_option_file():
    assert len(GPU_RUNS) == 15  # Table 1: 4 models x {x1, x2} + DirectKPN lr 1e-3 + DML M=4, 16; Table 2: 4 rows


@pytest.mark.parametrize('path', GPU_RUNS, ids=lambda p: p.stem)
def test_gpu_run_option_file_is_named_like_its_run_and_passes_the_preflight(city100_project, monkeypatch, path):
    monkeypatch.chdir(city100_project)
    opt = check_option_file(str(path), command='train')
    assert path.name == f"train_city100gpu_{opt['name'].removeprefix('City100GPU_').lower()}.yml"
    train, val = opt['datasets']['train'], opt['datasets']['val']
    roots = {train.get('dataroot'), train.get('dataroot_gt'), (train.get('real') or {}).get('dataroot'),
             val['dataroot']}
    assert roots - {None} == {CROPS}
    assert f'# Run from the project root: basicsr train -opt options/{path.name}' in path.read_text()


def test_gpu_script_runs_every_option_file_as_it_is():
    script = (PROJECT_ROOT / 'scripts' / 'city100_gpu_runs.sh').read_text()
    listed = re.findall(r'options/(train_city100gpu_[\w.-]+\.yml)', script)
    assert sorted(listed) == [p.name for p in GPU_RUNS]
    code = [line for line in script.splitlines() if not line.lstrip().startswith('#')]
    assert [line for line in code if '--force_yml' in line and 'EXTRA' not in line] == []  # EXTRA: dry runs only


def test_cheapest_gpu_run_trains_on_cpu(city100_project):
    opt = read_options(OPTIONS / 'train_city100gpu_uniformkernel_x1.yml')
    opt['datasets']['train'].update(gt_size=32, batch_size_per_gpu=2, num_worker_per_gpu=0, dataset_enlarge_ratio=2)
    opt['train'].update(total_iter=2)
    opt['val']['val_freq'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    proc = run_cli(['train', '-opt', str(write_yaml(city100_project / 'shrunk.yml', opt))], cwd=city100_project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = city100_project / 'experiments' / 'City100GPU_UniformKernel_x1'
    assert (exp / 'models' / 'net_g_2.pth').is_file()
    with open(exp / 'metrics_City100_val.csv') as f:
        assert [row['image'] for row in csv.DictReader(f) if row['iter'] == '2'] == ['031H', '032H']


@pytest.mark.parametrize('path', GPU_RUNS, ids=lambda p: p.stem)
def test_whole_image_test_file_of_each_gpu_run(path):
    """options/test_city100gpu_<run>.yml tests what its training file trained (network, scale, model, metrics) on
    the whole images of scenes 031-040 (the training file's validation data, uncropped)."""
    train = read_options(path)
    test = read_options(OPTIONS / path.name.replace('train_', 'test_', 1))
    name = train['name']
    assert test['name'] == f'Full_{name}'
    assert re.fullmatch(rf'experiments/{re.escape(name)}/models/net_g_(latest|1750)\.pth',
                        test['path']['pretrain_network_g'])
    for key in ('network_g', 'scale', 'model_type'):
        assert test[key] == train[key], key
    val = dict(train['datasets']['val'], dataroot='datasets/City100_NikonD5500')
    assert test['datasets']['test_1'] == {key: value for key, value in val.items() if key in test['datasets']['test_1']}
    assert test['datasets']['test_1']['id_range'] == [31, 40]
    metrics = test['val']['metrics']
    assert {key: metrics[key] for key in train['val']['metrics']} == train['val']['metrics']  # (+ LPIPS for SR)


CLOSED_FORM = sorted(OPTIONS.glob('test_*_city100_x[12].yml'))


def test_closed_form_rows_have_their_test_files():
    assert [p.name for p in CLOSED_FORM] == [f'test_{kind}_city100_x{s}.yml' for kind in
                                             ('gaussian', 'identity', 'leastsquares') for s in (1, 2)]


@pytest.mark.parametrize('path', CLOSED_FORM, ids=lambda p: p.stem)
def test_closed_form_test_file_passes_the_preflight(city100_project, monkeypatch, path):
    monkeypatch.chdir(city100_project)
    opt = read_options(path)
    kind, scale = re.fullmatch(r'test_(\w+)_city100_x(\d)\.yml', path.name).groups()
    checkpoint = opt['path']['pretrain_network_g']
    if kind == 'leastsquares':  # where scripts/kernel_baselines.py writes the fitted kernel
        assert checkpoint == f'experiments/City100_KernelFit_x{scale}/net_g_leastsquares.pth'
        (city100_project / checkpoint).parent.mkdir(parents=True, exist_ok=True)
        torch.save({'params': build_network_opt(opt['network_g'], kind).state_dict()}, checkpoint)
    opt = check_option_file(str(path), command='test')
    assert opt['scale'] == opt['network_g']['scale'] == int(scale)
    assert opt['datasets']['test_1']['dataroot'] == 'datasets/City100_NikonD5500'
    label = dict(gaussian='Gaussian', identity='Identity', leastsquares='LeastSquares')[kind]
    assert opt['name'] == f'Full_{label}_x{scale}'  # results/Full_<label>_x<s>, what city100_results.sh reports
    if kind == 'gaussian':
        assert (opt['network_g']['sigma'], opt['network_g']['kernel_size']) == (1.5, 15)  # docs/results.md's fit
