"""SR models through ``basicsr test`` (per-image PSNR/SSIM/LPIPS CSV) and ``basicsr report`` (Table 2 layout)."""
import csv

import pytest
import yaml

from conftest import PROJECT_ROOT, run_cli, write_yaml
from test_datasets import make_realsr
from test_sr_options import shrink


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
