"""The fitted noise (issue 19): its fit recovers known noise, its samples have the fitted statistics, it is
deterministic and seeded, ``noise: fitted`` without a fit is one clear error, ``basicsr fit-noise`` writes its outputs
and refuses bad input with one line; AWGN (noise_sigma 5) stays the default."""
import os
import shutil

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import (PROJECT_ROOT, expect_option_error, one_error_line, run_cli, save_dmlnet, sr_options,
                      write_yaml)
from dml_basicsr.degradation import DMLDegradation
from dml_basicsr.degradation import pretrained_models
from dml_basicsr.degradation.noise_fit import FittedNoise, fit_noise, noise_path, read_noise_file
from dml_basicsr.utils.checkpoint import file_sha256
from dml_basicsr.ops.noise_model import (fit_variance_line, highpassed_lag1, noise_level_function,
                                         signal_dependent_noise, symmetric_taps)

A = [4e-4, 2e-4, 1e-4]  # variance per unit intensity ([0, 1] scale), per channel
B = [2e-5, 6e-5, 1e-5]
TOLERANCE = 0.10  # relative, on a and b, with ~200K flat pixels per channel


def identity():
    return DMLDegradation.fixed_kernel(kernel='identity', scale=1, noise_sigma=0)


def flat_patches(seed, size=256, block=32):
    """(1, 3, size, size) piecewise-constant HR of random levels, distinct per channel."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.rand(size // block, size // block, generator=g)
    img = levels.repeat_interleave(block, 0).repeat_interleave(block, 1)[None, None].repeat(1, 3, 1, 1)
    return img * torch.tensor([0.9, 0.8, 0.7]).view(1, 3, 1, 1) + 0.05


def noisy_pairs(filters=(None, None), count=4, a=A, b=B):
    g = torch.Generator().manual_seed(123)
    pairs = []
    for i in range(count):
        hr = flat_patches(i)
        pairs.append((f'pair{i}', hr, hr + signal_dependent_noise(hr, a, b, *filters, generator=g)))
    return pairs


def relative_errors(fitted, true):
    return [abs(f - t) / t for f, t in zip(fitted, true)]


def test_fit_recovers_signal_dependent_white_noise_per_channel():
    entry = fit_noise(identity(), noisy_pairs())
    assert max(relative_errors(entry['a'], A)) < TOLERANCE, entry['a']
    assert max(relative_errors(entry['b'], B)) < TOLERANCE, entry['b']
    assert entry['filter_v'] is None and entry['filter_h'] is None  # white: no correlation filter
    assert abs(entry['lag1']['v']) < 0.05 and abs(entry['lag1']['h']) < 0.05
    assert entry['pairs'] == 4


def test_fit_recovers_spatially_correlated_noise():
    filters = symmetric_taps(0.3), symmetric_taps(0.15)
    entry = fit_noise(identity(), noisy_pairs(filters))
    assert abs(entry['lag1']['v'] - 0.3) < 0.03 and abs(entry['lag1']['h'] - 0.15) < 0.03, entry['lag1']
    assert entry['filter_v'] is not None
    assert max(relative_errors(entry['a'], A)) < TOLERANCE, entry['a']
    assert max(relative_errors(entry['b'], B)) < TOLERANCE, entry['b']
    # the high-passed residual measures less correlation than the noise has; the fit undoes that
    assert entry['lag1_highpass']['v'][0] < 0.3 - 0.05
    assert highpassed_lag1(5, *filters)[0] == pytest.approx(entry['lag1_highpass']['v'][0], abs=0.02)


def test_samples_of_a_fitted_model_have_its_statistics():
    entry = fit_noise(identity(), noisy_pairs((symmetric_taps(0.25), symmetric_taps(0.25))))
    noise = FittedNoise({'rgb': entry}, 'test')
    clean = torch.cat([flat_patches(10 + i) for i in range(4)])
    syn = noise.sample(clean, torch.Generator().manual_seed(5))
    refit = fit_noise(identity(), [(f'syn{i}', clean[i:i + 1], clean[i:i + 1] + syn[i:i + 1]) for i in range(4)])
    assert max(relative_errors(refit['a'], entry['a'])) < TOLERANCE
    assert max(relative_errors(refit['b'], entry['b'])) < TOLERANCE
    assert refit['lag1']['v'] == pytest.approx(entry['lag1']['v'], abs=0.03)
    # the binned std of the samples follows sqrt(a I + b)
    for ch, (means, stds, counts) in enumerate(noise_level_function(clean, syn)):
        for m, s, n in zip(means, stds, counts):
            if n >= 5000:
                assert s == pytest.approx((entry['a'][ch] * m + entry['b'][ch]) ** 0.5, rel=0.08)


def test_fit_is_deterministic_and_refuses_unusable_pairs():
    assert fit_noise(identity(), noisy_pairs()) == fit_noise(identity(), noisy_pairs())
    with pytest.raises(Exception, match='no pairs'):
        fit_noise(identity(), [])
    hr = flat_patches(0)
    with pytest.raises(Exception, match=r'bad: the x1 model makes an LR of \(256, 256\).*another scale'):
        fit_noise(identity(), [('bad', hr, hr[..., ::2, ::2])])
    with pytest.raises(Exception, match='no intensity bin of channel 0'):
        fit_noise(identity(), [('tiny', hr[..., :20, :20], hr[..., :20, :20])])


def test_variance_line_is_constrained_non_negative():
    assert fit_variance_line([0.1, 0.5, 0.9], [3., 2., 1.], [1, 1, 1]) == (0., 2.)  # falling: a = 0
    a, b = fit_variance_line([0.1, 0.5, 0.9], [0.05, 0.5, 0.95], [1, 1, 1])
    assert b == 0 and a == pytest.approx(1.0, rel=0.05)


def noise_data(a=A, b=B, filters=(None, None)):
    return {'rgb': dict(a=a, b=b, filter_v=filters[0], filter_h=filters[1])}


def test_fitted_noise_in_the_degradation_is_seeded_and_signal_dependent():
    net = identity().net
    hr = flat_patches(0)
    first = DMLDegradation(net, noise=noise_data(), seed=3, clamp=False)(hr)
    assert torch.equal(first, DMLDegradation(net, noise=noise_data(), seed=3, clamp=False)(hr))
    assert not torch.equal(first, DMLDegradation(net, noise=noise_data(), seed=4, clamp=False)(hr))
    expected = signal_dependent_noise(hr, A, B, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(first - hr, expected, atol=1e-6)
    with pytest.raises(ValueError, match='the fitted noise is for rgb LR, this LR has 1 channel'):
        DMLDegradation(net, noise=noise_data())(hr[:, :1])


def test_awgn_stays_the_default():
    net = identity().net
    deg = DMLDegradation(net, seed=7, clamp=False)
    assert deg.noise == 'awgn' and deg.noise_sigma == 5.0 and deg.fitted_noise is None
    hr = flat_patches(1)
    white = torch.randn(hr.shape, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(deg(hr), hr + 5. / 255. * white)
    awgn = DMLDegradation(net, seed=7, noise='awgn', clamp=False)(hr)
    assert torch.equal(awgn, DMLDegradation(net, seed=7, clamp=False)(hr))


def test_fitted_noise_errors_are_one_clear_message(tmp_path, monkeypatch):
    checkpoint = save_dmlnet(tmp_path / 'dml_x2.pth')
    with pytest.raises(ValueError, match=r'dml_x2.pth has no fitted noise .*dml_x2.pth.noise.yml is missing.*'
                                         r'basicsr fit-noise'):
        DMLDegradation.from_checkpoint(checkpoint, noise='fitted')
    with pytest.raises(ValueError, match="noise 'fitted' replaces the AWGN of noise_sigma; noise_sigma 3"):
        DMLDegradation.from_checkpoint(checkpoint, noise='fitted', noise_sigma=3)
    with pytest.raises(ValueError, match="noise must be 'awgn'"):
        DMLDegradation.from_checkpoint(checkpoint, noise='poisson')
    with pytest.raises(ValueError, match='a fixed kernel has no fitted noise'):
        DMLDegradation.fixed_kernel(noise='fitted')
    manifest = {name: {k: v for k, v in entry.items() if k != 'noise'}
                for name, entry in pretrained_models.pretrained_manifest().items()}
    monkeypatch.setattr(pretrained_models, 'pretrained_manifest', lambda: manifest)
    with pytest.raises(ValueError,
                       match="shipped model 'realsr-x4' has no fitted noise.*basicsr fit-noise -opt .*--save-beside"):
        DMLDegradation.pretrained('realsr-x4', noise='fitted')


def test_noise_file_of_other_weights_is_refused(tmp_path):
    checkpoint = save_dmlnet(tmp_path / 'a.pth')
    write_yaml(noise_path(checkpoint), dict(noise_data(), checkpoint_sha256='0' * 64))
    with pytest.raises(ValueError, match='fitted for the weights with sha256 0000'):
        DMLDegradation.from_checkpoint(checkpoint, noise='fitted')
    with pytest.raises(ValueError, match=r'rgb.a must be a list of 3 finite numbers'):
        FittedNoise({'rgb': dict(a=[1], b=B)}, 'x')


def test_option_file_with_fitted_noise_but_no_fit_is_one_error_line(tmp_path):
    checkpoint = save_dmlnet(tmp_path / 'dml_x2.pth')
    opt = sr_options(tmp_path, checkpoint)
    opt['degradation'] = dict(checkpoint=str(checkpoint), noise='fitted')
    expect_option_error(tmp_path, opt, 'dml_x2.pth has no fitted noise', 'basicsr fit-noise')
    opt['degradation'] = dict(checkpoint=str(checkpoint), noise='fitted', noise_sigma=2)
    expect_option_error(tmp_path, opt, "degradation.noise 'fitted' replaces the AWGN of noise_sigma")
    opt['degradation'] = dict(checkpoint=str(checkpoint), noise='fited')
    expect_option_error(tmp_path, opt, "degradation.noise must be 'awgn'")


def write_realsr_pairs(root, ids=(1, 2, 3), size=384, scale=4):
    """A RealSR V3 layout of piecewise-flat HR and their x4 area-downscaled LR plus known signal-dependent noise."""
    folder = root / 'Canon' / 'Train' / str(scale)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in ids:
        levels = rng.choice([60., 130., 200.], (size // 96, size // 96, 1)) + np.array([0., 10., 20.])
        hr = np.kron(levels, np.ones((96, 96, 1)))
        lr = cv2.resize(hr, (size // scale, size // scale), interpolation=cv2.INTER_AREA)
        lr = lr + rng.normal(size=lr.shape) * np.sqrt(lr / 255. * 4e-4 + 1e-5) * 255.
        cv2.imwrite(str(folder / f'Canon_{i:03d}_HR.png'), np.clip(np.round(hr), 0, 255).astype(np.uint8))
        cv2.imwrite(str(folder / f'Canon_{i:03d}_LR{scale}.png'), np.clip(np.round(lr), 0, 255).astype(np.uint8))


def fit_noise_options(dataroot, color='y'):
    return dict(name='fit', scale=4, datasets=dict(train=dict(
        name='pairs', type='RealSRDataset', dataroot=str(dataroot), split='Train', id_range=[1, 3], cameras=['Canon'],
        lr_grid='lr', color=color, io_backend=dict(type='disk'), gt_size=96)))


@pytest.mark.parametrize('option', ['--checkpoint', '--pretrained'])
def test_fit_noise_takes_a_shipped_model_by_name_but_never_writes_beside_it(tmp_path, option):
    write_realsr_pairs(tmp_path / 'RealSR', ids=(1,))
    opt = write_yaml(tmp_path / 'opt.yml', fit_noise_options(tmp_path / 'RealSR', color='y'))
    proc = run_cli(['fit-noise', '-opt', str(opt), option, 'realsr-x4', '--output', 'fit'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = yaml.safe_load((tmp_path / 'fit' / 'noise.yml').read_text())
    assert data['y']['data']['checkpoint'] == 'realsr_x4.pth'
    assert data['checkpoint_sha256'] == pretrained_models.pretrained_manifest()['realsr-x4']['sha256']
    proc = run_cli(['fit-noise', '-opt', str(opt), option, 'realsr-x4', '--output', 'fit2', '--save-beside'],
                   cwd=tmp_path)
    line = one_error_line(proc, 'fit-noise')
    assert f'{option} realsr-x4 --save-beside' in line and 'never writes into' in line
    assert proc.returncode == 2 and not (tmp_path / 'fit2').exists()


def test_fit_noise_command_writes_its_outputs(tmp_path):
    write_realsr_pairs(tmp_path / 'RealSR')
    opt = write_yaml(tmp_path / 'opt.yml', fit_noise_options(tmp_path / 'RealSR', color='y'))
    checkpoint = tmp_path / 'realsr_x4.pth'
    shutil.copy(PROJECT_ROOT / 'dml_basicsr' / 'degradation' / 'pretrained' / 'realsr_x4.pth', checkpoint)
    out = tmp_path / 'fit'
    proc = run_cli(['fit-noise', '-opt', str(opt), '--checkpoint', str(checkpoint), '--output', str(out),
                    '--save-beside'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'basicsr fit-noise: y noise of 3 pairs' in proc.stdout
    assert (out / 'noise_level.png').is_file() and cv2.imread(str(out / 'noise_level.png')) is not None
    data = yaml.safe_load((out / 'noise.yml').read_text())
    assert set(data) >= {'model', 'checkpoint_sha256', 'y'} and data['y']['pairs'] == 3
    assert data['y']['data']['option_file'] == str(opt)
    assert read_noise_file(out / 'noise.yml', checkpoint).entries['y']['a'] == data['y']['a']
    deg = DMLDegradation.from_checkpoint(checkpoint, noise='fitted', seed=0)
    assert deg.noise == 'fitted' and 'y' in deg.fitted_noise.entries
    # an RGB fit of the same weights joins the Y one beside the checkpoint
    proc = run_cli(['fit-noise', '-opt', str(opt), '--checkpoint', str(checkpoint), '--output', str(out),
                    '--save-beside', '--force_yml', 'datasets:train:color=~'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    beside = read_noise_file(noise_path(checkpoint), checkpoint)
    assert set(beside.entries) == {'y', 'rgb'}
    lr = DMLDegradation.from_checkpoint(checkpoint, noise='fitted', seed=0)(torch.rand(1, 3, 64, 64))
    assert lr.shape == (1, 3, 16, 16)


def test_fit_noise_reads_basicsrs_paired_folders_as_the_realsr_layout(tmp_path):
    """The HR/ + LR/ folders of docs/training.md (BasicSR's PairedImageDataset) give the same fit as the same pairs
    in RealSR's layout."""
    write_realsr_pairs(tmp_path / 'RealSR')
    folder = tmp_path / 'RealSR' / 'Canon' / 'Train' / '4'
    for kind, suffix in (('HR', 'HR'), ('LR', 'LR4')):
        (tmp_path / 'mine' / kind).mkdir(parents=True)
        for i in (1, 2, 3):
            shutil.copy(folder / f'Canon_{i:03d}_{suffix}.png', tmp_path / 'mine' / kind / f'{i:03d}.png')
    paired = dict(name='fit', scale=4, datasets=dict(train=dict(
        name='mine', type='PairedImageDataset', dataroot_gt=str(tmp_path / 'mine' / 'HR'),
        dataroot_lq=str(tmp_path / 'mine' / 'LR'), filename_tmpl='{}', io_backend=dict(type='disk'), color='y',
        gt_size=96, use_hflip=False, use_rot=False)))
    fits = {}
    for name, options in (('paired', paired), ('realsr', fit_noise_options(tmp_path / 'RealSR', color='y'))):
        opt = write_yaml(tmp_path / f'{name}.yml', options)
        proc = run_cli(['fit-noise', '-opt', str(opt), '--pretrained', 'realsr-x4', '--output', name], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        fits[name] = yaml.safe_load((tmp_path / name / 'noise.yml').read_text())['y']
    assert fits['paired']['pairs'] == 3 and fits['paired']['a'] == pytest.approx(fits['realsr']['a'])
    assert fits['paired']['b'] == pytest.approx(fits['realsr']['b'])
    # prepare cuts training sub-images and still takes only this package's paired folders
    proc = run_cli(['prepare', '-opt', str(tmp_path / 'paired.yml'), '--output', 'lmdb'], cwd=tmp_path)
    assert 'reads the aligned pairs of AdaptationPairsDataset, City100Dataset, DRealSRDataset, RealSRDataset' in \
        one_error_line(proc, 'prepare')


def test_fit_noise_command_refuses_bad_input_with_one_line(tmp_path):
    write_realsr_pairs(tmp_path / 'RealSR')
    opt = write_yaml(tmp_path / 'opt.yml', fit_noise_options(tmp_path / 'RealSR'))
    x1 = PROJECT_ROOT / 'dml_basicsr' / 'degradation' / 'pretrained' / 'city100_nikon_x1.pth'
    cases = [
        (['--checkpoint', str(tmp_path / 'none.pth')], 'none.pth: checkpoint not found'),
        (['--checkpoint', str(tmp_path)], f'--checkpoint {tmp_path}: not a file'),
        (['--checkpoint', str(x1)], 'the x1 model makes an LR of (384, 384) from this HR, the real LR is (96, 96)'),
        (['--checkpoint', str(x1), '--dataset', 'val'], 'no section datasets.val'),
        (['--checkpoint', str(save_dmlnet(tmp_path / 'x2.pth')), '--force_yml', 'datasets:train:dataroot=/nonexistent'],
         '/nonexistent'),
    ]
    for args, fragment in cases:
        proc = run_cli(['fit-noise', '-opt', str(opt), '--output', str(tmp_path / 'out')] + args, cwd=tmp_path)
        line = one_error_line(proc, 'fit-noise')
        assert proc.returncode == 2 and fragment in line, line
    assert not (tmp_path / 'out' / 'noise.yml').exists()


def test_the_noise_file_is_never_written_through_a_link(tmp_path):
    """``write_noise_file`` (fit-noise --save-beside, adapt) refuses a link at the file; fit-noise refuses it before
    it writes its --output."""
    from dml_basicsr.degradation.noise_fit import write_noise_file
    from dml_basicsr.utils.output_folder import OutputFolderError
    (tmp_path / 'victim.yml').write_text('keep\n')
    checkpoint = save_dmlnet(tmp_path / 'x2.pth')
    (tmp_path / 'x2.pth.noise.yml').symlink_to(tmp_path / 'victim.yml')
    with pytest.raises(OutputFolderError, match='x2.pth.noise.yml is a symbolic link'):
        write_noise_file(noise_path(checkpoint), {'model': 'signal_dependent_gaussian'})
    write_realsr_pairs(tmp_path / 'RealSR', ids=(1,), size=96)
    opt = write_yaml(tmp_path / 'opt.yml', fit_noise_options(tmp_path / 'RealSR'))
    proc = run_cli(['fit-noise', '-opt', str(opt), '--checkpoint', str(checkpoint), '--output', 'fit', '--save-beside'],
                   cwd=tmp_path)
    assert proc.returncode == 2 and 'x2.pth.noise.yml is a symbolic link' in one_error_line(proc, 'fit-noise')
    assert (tmp_path / 'victim.yml').read_text() == 'keep\n' and not (tmp_path / 'fit').exists()


def test_shipped_models_have_fitted_noise():
    manifest = pretrained_models.pretrained_manifest()
    for name in ('city100-nikon-x1', 'city100-nikon-x2', 'realsr-x4'):
        noise = pretrained_models.pretrained_noise(name)
        assert set(noise.entries) == {'y', 'rgb'}, name
        assert manifest[name]['noise']['rgb']['pairs'] == (60 if name == 'realsr-x4' else 30)
    deg = DMLDegradation.pretrained('realsr-x4', noise='fitted', seed=0)
    assert deg(torch.rand(1, 3, 32, 32)).shape == (1, 3, 8, 8)


def test_b2_option_file_passes_the_preflight(tmp_path, monkeypatch, shared_data):
    """On the real data, linked as scripts/link_datasets.sh links it, in a fresh working folder (a clean clone has
    no datasets/)."""
    from dml_basicsr.commands.preflight import check_option_file
    path = PROJECT_ROOT / 'options' / 'train_srx4_realsr_syndml_fittednoise.yml'
    with open(path) as f:
        assert yaml.safe_load(f)['degradation'] == {'pretrained': 'realsr-x4', 'noise': 'fitted'}
    data = shared_data
    (tmp_path / 'datasets').mkdir()
    for name in ('RealSR_V3_x4_crops', 'Urban100_HR'):
        (tmp_path / 'datasets' / name).symlink_to(data / name)
    monkeypatch.chdir(tmp_path)
    check_option_file(str(path), command='train')


def test_mmengine_components_take_the_fitted_noise(tmp_path):
    pytest.importorskip('mmengine')
    from dml_basicsr.integrations.mmengine import DMLDataPreprocessor, DMLDegrade
    checkpoint = save_dmlnet(tmp_path / 'dml_x2.pth')
    for component in (DMLDegrade, DMLDataPreprocessor):
        with pytest.raises(ValueError, match=rf'^{component.__name__}: .*dml_x2.pth has no fitted noise.*fit-noise'):
            component(checkpoint=str(checkpoint), noise='fitted')
    write_yaml(noise_path(checkpoint), dict(model='signal_dependent_gaussian', y=dict(a=[1e-4], b=[1e-5]),
                                            checkpoint_sha256=file_sha256(str(checkpoint))))
    gt = np.full((32, 32, 1), 128, np.uint8)
    first = DMLDegrade(checkpoint=str(checkpoint), noise='fitted', seed=1)({'gt': gt})['img']
    again = DMLDegrade(checkpoint=str(checkpoint), noise='fitted', seed=1)({'gt': gt})['img']
    assert first.shape == (16, 16, 1) and np.array_equal(first, again) and first.std() > 0
    assert "noise='fitted'" in repr(DMLDegrade(checkpoint=str(checkpoint), noise='fitted'))
    pre = DMLDataPreprocessor(checkpoint=str(checkpoint), noise='fitted', seed=1)
    out = pre({'inputs': torch.full((2, 1, 32, 32), 128.)}, training=True)
    assert out['inputs'].shape == (2, 1, 16, 16)


def test_an_output_folder_holding_the_checkpoint_is_refused(tmp_path):
    """--checkpoint fn6/noise_level.png --output fn6 overwrote the checkpoint: it is an input."""
    (tmp_path / 'fn6').mkdir()
    checkpoint = save_dmlnet(tmp_path / 'fn6' / 'noise_level.png')
    before = open(checkpoint, 'rb').read()
    write_realsr_pairs(tmp_path / 'RealSR', ids=(1,), size=96)
    opt = write_yaml(tmp_path / 'opt.yml', fit_noise_options(tmp_path / 'RealSR'))
    proc = run_cli(['fit-noise', '-opt', str(opt), '--checkpoint', 'fn6/noise_level.png', '--output', 'fn6'],
                   cwd=tmp_path)
    line = one_error_line(proc, 'fit-noise')
    assert proc.returncode == 2 and 'holds the input fn6/noise_level.png' in line, line
    assert open(tmp_path / 'fn6' / 'noise_level.png', 'rb').read() == before
    assert os.listdir(tmp_path / 'fn6') == ['noise_level.png']
