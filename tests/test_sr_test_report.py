"""SR models through ``basicsr test`` (per-image PSNR/SSIM/LPIPS CSV) and ``basicsr report`` (Table 2 layout)."""
import csv

import cv2
import pytest
import yaml

from conftest import PROJECT_ROOT, flat, make_realsr, make_srrgb, run_cli, shrink, write_yaml


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A work folder with a tiny RealSR V3 x2 and VDSR/RCAN trained 2 iterations on it (shipped options)."""
    root = tmp_path_factory.mktemp('sr_test_report')
    for split in ('Train', 'Test'):
        make_realsr(root / 'datasets' / 'RealSR_V3', split=split, scale=2, ids=(1, 2), size=(48, 48))
    for arch in ('vdsr', 'rcan'):
        with open(PROJECT_ROOT / 'options' / f'train_{arch}_realsr_x2.yml') as f:
            opt = shrink(yaml.safe_load(f))
        proc = run_cli(['train', '-opt', str(write_yaml(root / f'train_{arch}.yml', opt))], cwd=root)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return root


@pytest.mark.parametrize('arch, name', [('vdsr', 'VDSR_RealSR_x2'), ('rcan', 'RCAN_RealSR_x2')])
def test_sr_model_through_basicsr_test(trained, arch, name):
    with open(PROJECT_ROOT / 'options' / f'test_{arch}_x2.yml') as f:
        opt = yaml.safe_load(f)
    with open(trained / f'train_{arch}.yml') as f:
        opt['network_g'] = yaml.safe_load(f)['network_g']  # the shrunk network that was trained
    opt_file = write_yaml(trained / f'test_{arch}.yml', opt)
    # The override the option file's header documents for testing another training variant.
    proc = run_cli(['test', '-opt', str(opt_file), '--force_yml', f'name={name}',
                    f'path:pretrain_network_g=experiments/{name}/models/net_g_2.pth'], cwd=trained)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tested = read_rows(trained / 'results' / name / 'metrics_RealSRV3_test.csv')
    assert [row['image'] for row in tested] == [f'{cam}_00{i}_LR2' for cam in ('Canon', 'Nikon') for i in (1, 2)]
    assert {row['iter'] for row in tested} == {name}
    assert list(tested[0]) == ['iter', 'image', 'psnr', 'ssim', 'lpips']
    # The same weights on the same pairs: the test reproduces the last training validation.
    validated = [r for r in read_rows(trained / 'experiments' / name / 'metrics_RealSRV3_test.csv') if r['iter'] == '2']
    for t, v in zip(tested, validated):
        for metric in ('psnr', 'ssim', 'lpips'):
            assert float(t[metric]) == pytest.approx(float(v[metric]), abs=1e-6)
    assert (trained / 'results' / name / 'visualization' / 'RealSRV3_test' / f'Canon_001_LR2_{name}.png').is_file()


def test_report_makes_table2_from_test_runs(trained):
    names = ['VDSR_RealSR_x2', 'RCAN_RealSR_x2']
    for arch, name in zip(('vdsr', 'rcan'), names):
        if not (trained / 'results' / name).is_dir():
            test_sr_model_through_basicsr_test(trained, arch, name)
    proc = run_cli(['report', '--dataset', 'RealSRV3_test', *(f'results/{n}' for n in names)], cwd=trained)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == '| Method | x2 PSNR | x2 SSIM | x2 LPIPS |'
    for line, name in zip(lines[2:], names):
        rows = read_rows(trained / 'results' / name / 'metrics_RealSRV3_test.csv')
        means = [sum(float(r[m]) for r in rows) / len(rows) for m in ('psnr', 'ssim', 'lpips')]
        assert line == f'| {name[:-3]} | {means[0]:.2f} | {means[1]:.4f} | {means[2]:.4f} |'


def test_lr_only_and_unaligned_sets_give_pictures_not_metrics(trained):
    lr_folder = trained / 'real_lr'
    lr_folder.mkdir(exist_ok=True)
    for name in ('photo_a', 'photo_b'):
        cv2.imwrite(str(lr_folder / f'{name}.png'), flat(20, 24, 90))
    make_srrgb(trained / 'srraw', sequences=(3,), size=(40, 60))
    with open(PROJECT_ROOT / 'options' / 'test_vdsr_x2.yml') as f:
        opt = yaml.safe_load(f)
    with open(trained / 'train_vdsr.yml') as f:
        opt['network_g'] = yaml.safe_load(f)['network_g']
    opt['name'] = 'VDSR_on_real_lr'
    opt['path']['pretrain_network_g'] = 'experiments/VDSR_RealSR_x2/models/net_g_2.pth'
    opt['val']['save_img'] = False  # pictures are still saved: they are all these sets give
    opt['datasets'] = {
        'test_1': dict(name='RealLR', type='LRFolderDataset', dataroot_lq=str(lr_folder), color='y'),
        'test_2': dict(name='SRRAW', type='SRRGBDataset', dataroot=str(trained / 'srraw'), color='y', max_size=16),
    }
    proc = run_cli(['test', '-opt', str(write_yaml(trained / 'test_real_lr.yml', opt))], cwd=trained)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = trained / 'results' / 'VDSR_on_real_lr'
    for dataset, name, side in (('RealLR', 'photo_a', (40, 48)), ('RealLR', 'photo_b', (40, 48)),
                                ('SRRAW', '00003_00006', (32, 32))):
        img = cv2.imread(str(results / 'visualization' / dataset / f'{name}_VDSR_on_real_lr.png'))
        assert img is not None and img.shape[:2] == side
    assert not list(results.glob('metrics_*.csv'))
    log = ''.join(p.read_text() for p in results.glob('test_*.log'))
    assert 'RealLR: 2 image(s) without an aligned ground truth' in log
    assert 'SRRAW: 1 image(s) without an aligned ground truth' in log
