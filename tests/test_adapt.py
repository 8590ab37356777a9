"""``basicsr adapt``: a DML model fine-tuned to a new camera from a few pairs; its checks, outputs and record.

The "new camera" here is a known degradation (a Gaussian blur at x2, not the source model's), so how much closer the
adapted model comes to it is measured, not assumed."""
import hashlib
import os
import shutil

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import SHARED_DATA, one_error_line, run_cli
from dml_basicsr.archs import DMLNet, FixedKernelNet
from dml_basicsr.data import AdaptationPairsDataset
from dml_basicsr.data.embedded import load_embedded
from dml_basicsr.data.errors import DatasetError
from dml_basicsr.data.pair_folder import find_pairs
from dml_basicsr.degradation import DMLDegradation
from dml_basicsr.degradation.camera_pairs import (alignment_problem, evaluation_folds, load_camera_pairs, read_pair,
                                                  size_problem, split_pairs)
from dml_basicsr.degradation.lr_fidelity import lr_fidelity
from dml_basicsr.ops.kernel_fit import least_squares_kernel
from dml_basicsr.ops import gaussian_kernel

SCALE = 2
TRUE_SIGMA = 1.6  # the new camera's blur (HR pixels)
# (image, top, left) of the 128x128 HR crops: the camera's pairs, then one scene the command never sees.
SCENES = [('astronaut', 40, 180), ('coffee', 100, 200), ('chelsea', 60, 120), ('brick', 50, 50), ('rocket', 150, 200)]
UNSEEN = ('astronaut', 300, 300)
FAST = ['--iters', '40', '--val-freq', '10', '--lr', '5e-3', '--gt-size', '48', '--batch-size', '4', '--device', 'cpu']



def hr_crop(name, top, left, size=128):
    return np.round(load_embedded(name)[top:top + size, left:left + size] * 255.).astype(np.uint8)


def camera_lr(hr_bgr):
    """The new camera: Gaussian blur sigma TRUE_SIGMA, sampled at x2, 8-bit."""
    net = FixedKernelNet(num_in_ch=3, scale=SCALE, kernel='gaussian', sigma=TRUE_SIGMA)
    hr = torch.from_numpy(hr_bgr.astype(np.float32) / 255.).permute(2, 0, 1)[None]
    with torch.no_grad():
        lr = DMLDegradation(net, noise_sigma=0)(hr)
    return np.round(lr[0].permute(1, 2, 0).numpy() * 255.).astype(np.uint8)


def write_pairs(folder, scenes, gray=(), size=128):
    (folder / 'HR').mkdir(parents=True, exist_ok=True)
    (folder / 'LR').mkdir(exist_ok=True)
    for i, scene in enumerate(scenes):
        hr = hr_crop(*scene, size=size)
        lr = camera_lr(hr)
        if i in gray:
            hr, lr = (cv2.cvtColor(x, cv2.COLOR_BGR2GRAY) for x in (hr, lr))
        cv2.imwrite(str(folder / 'HR' / f'p{i}.png'), hr)
        cv2.imwrite(str(folder / 'LR' / f'p{i}.png'), lr)
    return folder


def source_checkpoint(path):
    """A small x2 DMLNet whose degradation is not the camera's (Gaussian basis, unit gain)."""
    torch.manual_seed(0)
    net = DMLNet(num_in_ch=1, num_basis=2, kernel_size=9, scale=SCALE, num_feat=8, basis_init='gaussian')
    torch.save({'params': net.state_dict()}, path)
    return path


@pytest.fixture(scope='module')
def adapted(tmp_path_factory):
    """One `basicsr adapt` of 5 pairs (one of them gray) of the known camera: (tmp folder, process, OUT)."""
    tmp = tmp_path_factory.mktemp('adapt')
    pairs = write_pairs(tmp / 'camera', SCENES, gray=(2,))
    source = source_checkpoint(tmp / 'source.pth')
    out = tmp / 'out'
    proc = run_cli(['adapt', '--checkpoint', source, '--pairs', pairs, '--output', out, *FAST], cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, proc, out


def record_of(out):
    return yaml.safe_load((out / 'adapt.yml').read_text())


def rows_of(record):
    return {row['method'].split(' (')[0]: row for row in record['results']}


def test_adaptation_recovers_a_known_camera_better_than_the_unadapted_model(adapted):
    tmp, proc, out = adapted
    rows = rows_of(record_of(out))
    assert rows['Adapted']['psnr'] > rows['Unadapted']['psnr'] + 1.0
    assert 'Adapted (iteration' in proc.stdout and '| Unadapted (source.pth) |' in proc.stdout
    psnr_gain = rows['Adapted']['psnr'] - rows['Unadapted']['psnr']
    assert f'adaptation paid (PSNR {psnr_gain:+.2f} dB, SSIM ' in proc.stdout
    # On a scene it never saw, the adapted LR is closer to the camera's than the source's.
    hr = hr_crop(*UNSEEN)
    cv2.imwrite(str(tmp / 'unseen_hr.png'), hr)
    cv2.imwrite(str(tmp / 'unseen_lr.png'), camera_lr(hr))
    unseen = [(read_pair('unseen', str(tmp / 'unseen_hr.png'), str(tmp / 'unseen_lr.png'), SCALE, 1), (0., 1.))]
    before = lr_fidelity(DMLDegradation.from_checkpoint(str(tmp / 'source.pth'), noise_sigma=0), unseen)
    after = lr_fidelity(DMLDegradation.from_checkpoint(str(out / 'model.pth'), noise_sigma=0), unseen)
    assert after['psnr'] > before['psnr'] + 1.0


def test_the_table_rows_and_the_chosen_checkpoint(adapted):
    _, _, out = adapted
    record = record_of(out)
    assert [r['method'].split(' (')[0].split(' /')[0] for r in record['results']] == [
        'MATLAB bicubic', 'Least-squares 15x15 kernel', 'Unadapted', 'Adapted']
    assert set(record['curve']) == {10, 20, 30, 40}
    chosen = record['chosen_iteration']
    assert chosen == 40  # the end of the budget: the held-out pair finds it better than the unadapted model
    # The adapted row (the final weights, measured again) is BasicSR's own validation of the last checkpoint.
    assert abs(rows_of(record)['Adapted']['psnr'] - record['curve'][chosen]['psnr']) < 0.02
    assert record['held_out']['pairs'] and len(record['pairs']) == 5


def sha256(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def test_the_record_is_plain_yaml_and_its_sha256s_match(adapted):
    tmp, _, out = adapted
    text = (out / 'adapt.yml').read_text()
    assert '!!' not in text and '!' not in text.replace('!=', '')
    record = yaml.safe_load(text)
    assert record['source']['sha256'] == sha256(tmp / 'source.pth')
    assert record['outputs']['model_sha256'] == sha256(out / 'model.pth')
    for pair in record['pairs']:
        assert pair['hr_sha256'] == sha256(pair['hr']) and pair['lr_sha256'] == sha256(pair['lr'])
    assert record['command'].startswith('basicsr adapt --checkpoint ')
    assert record['budget']['iterations'] == 40 and record['budget']['lr'] == 5e-3


def test_the_model_loads_in_the_three_interfaces(adapted):
    tmp, _, out = adapted
    model = str(out / 'model.pth')
    hr = torch.rand(1, 3, 32, 32)
    api = DMLDegradation.from_checkpoint(model, noise='fitted', seed=1)
    option_file = DMLDegradation.from_options(dict(checkpoint=model, noise='fitted', seed=1))
    from dml_basicsr.integrations.mmengine import DMLDataPreprocessor, DMLDegrade
    lr = api(hr)
    assert lr.shape == (1, 3, 16, 16) and torch.equal(lr, option_file(hr))
    # The mmengine components give the same noise-free LR as the API (BGR uint8 images in, RGB floats compared).
    clean = DMLDegradation.from_checkpoint(model, noise_sigma=0)
    bgr = hr_crop('chelsea', 60, 120, size=32)
    rgb = torch.from_numpy(bgr[:, :, ::-1].astype(np.float32) / 255.).permute(2, 0, 1)[None]
    expected = clean(rgb)
    assert not torch.allclose(expected, DMLDegradation.from_checkpoint(str(tmp / 'source.pth'), noise_sigma=0)(rgb),
                              atol=1e-3)  # the adapted model, not the source
    transformed = DMLDegrade(checkpoint=model, noise_sigma=0)({'gt': bgr, 'gt_channel_order': 'bgr'})['img']
    as_rgb = torch.from_numpy(np.ascontiguousarray(transformed[:, :, ::-1]).astype(np.float32) / 255.)
    torch.testing.assert_close(as_rgb.permute(2, 0, 1)[None], expected, rtol=0, atol=1e-5)
    preprocessor = DMLDataPreprocessor(checkpoint=model, noise_sigma=0, mean=[0., 0., 0.], std=[255., 255., 255.],
                                       bgr_to_rgb=True)
    batch = preprocessor({'inputs': [torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))]}, training=True)
    torch.testing.assert_close(batch['inputs'], expected, rtol=0, atol=1e-5)


def test_pictures_and_fitted_noise_are_written(adapted):
    _, _, out = adapted
    for name in ('basis', 'weights', 'weights_stretched', 'kernels', 'kernel_points'):
        assert cv2.imread(str(out / 'pictures' / f'{name}.png')) is not None
    noise = yaml.safe_load((out / 'model.pth.noise.yml').read_text())
    assert noise['checkpoint_sha256'] == sha256(out / 'model.pth') and 'y' in noise


def test_an_existing_output_is_refused_and_resume_needs_the_same_plan(adapted):
    tmp, _, out = adapted
    before = sorted(p.name for p in out.iterdir())
    source, pairs = tmp / 'source.pth', tmp / 'camera'
    line = one_error_line(run_cli(['adapt', '--checkpoint', source, '--pairs', pairs, '--output', out, *FAST],
                                  cwd=tmp), 'adapt')
    assert 'exists' in line and '--overwrite' in line
    proc = run_cli(['adapt', '--checkpoint', source, '--pairs', pairs, '--output', out, *FAST[:-2], '--lr', '1e-3',
                    '--auto_resume'], cwd=tmp)
    assert 'adapt_plan.yml differs from this run at budget.lr' in one_error_line(proc, 'adapt')
    assert sorted(p.name for p in out.iterdir()) == before


def refused(tmp, args, *fragments):
    proc = run_cli(['adapt', *map(str, args), *FAST], cwd=tmp)
    line = one_error_line(proc, 'adapt')
    assert proc.returncode == 2
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.fixture
def camera(tmp_path):
    return write_pairs(tmp_path / 'camera', SCENES[:3]), source_checkpoint(tmp_path / 'source.pth')


def test_pairs_of_another_scale_are_refused_naming_the_file(tmp_path, camera):
    pairs, source = camera
    lr = cv2.imread(str(pairs / 'HR' / 'p1.png'))
    cv2.imwrite(str(pairs / 'LR' / 'p1.png'), cv2.resize(lr, (43, 43), interpolation=cv2.INTER_AREA))
    refused(tmp_path, ['--checkpoint', source, '--pairs', pairs, '--output', tmp_path / 'out'],
            str(pairs / 'LR' / 'p1.png'), 'x2.98 pair', 'the model is x2')
    assert not (tmp_path / 'out').exists()


def test_an_lr_one_pixel_short_is_refused(tmp_path, camera):
    pairs, source = camera
    lr = cv2.imread(str(pairs / 'LR' / 'p0.png'))
    cv2.imwrite(str(pairs / 'LR' / 'p0.png'), lr[:-1])
    refused(tmp_path, ['--checkpoint', source, '--pairs', pairs, '--output', tmp_path / 'out'],
            'p0.png', 'LR 64x63 is not 1/2 of HR 128x128')
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('how', ['shifted', 'rescaled', 'zoomed about its centre', 'another scene'])
def test_misaligned_pairs_are_refused_naming_the_file(tmp_path, camera, how):
    pairs, source = camera
    path = pairs / 'LR' / 'p2.png'
    if how == 'shifted':  # 2 LR pixels = 4 HR pixels
        hr = hr_crop(SCENES[2][0], SCENES[2][1], SCENES[2][2] + 4)
        cv2.imwrite(str(path), camera_lr(hr))
    elif how == 'rescaled':  # the LR of an HR zoomed by 6%: the shift grows across the image
        hr = load_embedded(SCENES[2][0])
        big = cv2.resize(hr, None, fx=1.06, fy=1.06, interpolation=cv2.INTER_CUBIC)
        top, left = int(SCENES[2][1] * 1.06), int(SCENES[2][2] * 1.06)
        cv2.imwrite(str(path), camera_lr(np.round(big[top:top + 128, left:left + 128] * 255).astype(np.uint8)))
    elif how == 'zoomed about its centre':  # 8%: no shift at the centre, 5 HR pixels at the quadrants' centres
        hr = hr_crop('astronaut', 40, 180, size=256)
        cv2.imwrite(str(pairs / 'HR' / 'p2.png'), hr)
        zoom = cv2.getRotationMatrix2D((127.5, 127.5), 0, 1.08)
        cv2.imwrite(str(path), camera_lr(cv2.warpAffine(hr, zoom, (256, 256), flags=cv2.INTER_CUBIC,
                                                        borderMode=cv2.BORDER_REFLECT)))
    else:
        shutil.copy(pairs / 'LR' / 'p0.png', path)
    line = refused(tmp_path, ['--checkpoint', source, '--pairs', pairs, '--output', tmp_path / 'out'], str(path))
    assert ('misaligned' in line) if how != 'another scene' else ('not the same scene' in line)
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('quadrants, refused', [([(1.6, 0.), (-1.6, 0.), (0., 0.), (0.1, 0.)], True),
                                                ([(1.6, 0.), (0.7, 0.), (0., 0.), (0.1, 0.)], False)])
def test_two_quadrants_apart_are_a_scale_or_rotation_one_is_not(monkeypatch, quadrants, refused):
    import dml_basicsr.degradation.camera_pairs as camera_pairs
    hr = hr_crop(*SCENES[0])
    deg = DMLDegradation(FixedKernelNet(scale=SCALE, kernel='gaussian', sigma=TRUE_SIGMA), noise_sigma=0)
    gray = torch.from_numpy(cv2.cvtColor(hr, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.)[None, None]
    pair = camera_pairs.CameraPair('p', 'hr.png', 'lr.png', gray, deg(gray))
    assert camera_pairs.alignment_problem(deg, pair) is None
    monkeypatch.setattr(camera_pairs, 'quadrant_shifts', lambda *a: quadrants)  # limit at x2: 3 HR = 1.5 LR pixels
    problem = camera_pairs.alignment_problem(deg, pair)
    assert (problem is not None and 'between quadrants' in problem) == refused


def test_outputs_overlapping_the_pairs_or_foreign_folders_are_refused(tmp_path, camera):
    pairs, source = camera
    base = ['--checkpoint', source, '--pairs', pairs]
    refused(tmp_path, [*base, '--output', pairs / 'out'], 'overlaps --pairs')
    refused(tmp_path, ['--checkpoint', source, '--pairs', pairs / 'HR', '--output', pairs], 'overlaps --pairs')
    (tmp_path / 'elsewhere').mkdir()
    (tmp_path / 'link').symlink_to(tmp_path / 'elsewhere')
    refused(tmp_path, [*base, '--output', tmp_path / 'link'], 'symbolic link')
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'thesis.tex').write_text('keep')
    refused(tmp_path, [*base, '--output', mine, '--overwrite'], 'not a basicsr adapt output', 'thesis.tex')
    refused(tmp_path, [*base, '--output', tmp_path / 'new', '--auto_resume'], 'no run to continue')
    assert (mine / 'thesis.tex').read_text() == 'keep' and not (pairs / 'out').exists()
    assert sorted(p.name for p in pairs.iterdir()) == ['HR', 'LR']
    # A folder that only looks like an adapt output (a forged plan, someone's experiments/) is not deleted.
    forged = tmp_path / 'forged'
    (forged / 'experiments' / 'mytraining').mkdir(parents=True)
    (forged / 'experiments' / 'mytraining' / 'net.pth').write_text('keep')
    (forged / 'adapt_plan.yml').write_text('notes: mine\n')
    refused(tmp_path, [*base, '--output', forged, '--overwrite'], 'adapt_plan.yml is not a plan basicsr adapt wrote')
    (forged / 'adapt_plan.yml').write_text('{source: 1, pairs_dir: 1, pairs: 1, budget: 1, runs: 1}\n')
    refused(tmp_path, [*base, '--output', forged, '--overwrite'], 'experiments holds mytraining')
    assert (forged / 'experiments' / 'mytraining' / 'net.pth').read_text() == 'keep'


def test_overwrite_takes_an_empty_folder_and_an_archived_run_and_patches_fit_the_scale(tmp_path, camera):
    pairs, source = camera
    out = tmp_path / 'out'
    out.mkdir()
    args = ['adapt', '--checkpoint', source, '--pairs', pairs, '--output', out, '--iters', '1', '--val-freq', '1',
            *FAST[4:8], '--gt-size', '45', *FAST[10:]]
    proc = run_cli([*args, '--overwrite'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert yaml.safe_load((out / 'adapt_options.yml').read_text())['datasets']['train']['gt_size'] == 44  # x2
    (out / 'experiments' / 'adapt_archived_20261207_120000').mkdir()  # what BasicSR leaves when it archives a run
    proc = run_cli([*args, '--overwrite'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_auto_resume_refuses_a_link_inside_its_runs_before_writing(tmp_path, camera):
    pairs, source = camera
    out = tmp_path / 'out'
    args = ['--checkpoint', source, '--pairs', pairs, '--output', out, '--iters', '2', '--val-freq', '1']
    assert run_cli(['adapt', *map(str, args), *FAST[4:]], cwd=tmp_path).returncode == 0
    (tmp_path / 'elsewhere').mkdir()
    pictures = out / 'experiments' / 'adapt' / 'visualization'
    pictures.mkdir(exist_ok=True)
    (pictures / 'planted').symlink_to(tmp_path / 'elsewhere')
    before = sorted(str(p) for p in out.rglob('*'))
    refused(tmp_path, [*args, '--auto_resume'], 'visualization/planted is a symbolic link inside the run folder')
    assert sorted(str(p) for p in out.rglob('*')) == before and not list((tmp_path / 'elsewhere').iterdir())


def test_overwrite_removes_the_earlier_outputs_never_what_a_link_points_to(tmp_path):
    from dml_basicsr.commands.adapt import remove_outputs
    victim = tmp_path / 'victim'
    (victim / 'models').mkdir(parents=True)
    (victim / 'models' / 'net.pth').write_bytes(b'keep')
    out = tmp_path / 'out'
    (out / 'experiments' / 'adapt').mkdir(parents=True)
    (out / 'experiments' / 'adapt' / 'models').symlink_to(victim / 'models')  # a link inside a removed folder
    (out / 'adapt_plan.yml').write_text('plan')
    (out / 'model.pth').symlink_to(victim / 'models' / 'net.pth')  # a link in place of an output file
    (out / 'pictures').symlink_to(victim)  # a link in place of an output folder
    remove_outputs(str(out), [str(tmp_path / 'camera')])
    assert os.listdir(out) == [] and (victim / 'models' / 'net.pth').read_bytes() == b'keep'


def test_a_pair_too_small_to_hold_out_is_refused(tmp_path):
    pairs = write_pairs(tmp_path / 'camera', [('coffee', 100, 200)])
    for kind in ('HR', 'LR'):
        img = cv2.imread(str(pairs / kind / 'p0.png'))
        cv2.imwrite(str(pairs / kind / 'p0.png'), img[:, :img.shape[1] * 5 // 8])
    source = source_checkpoint(tmp_path / 'source.pth')
    refused(tmp_path, ['--checkpoint', source, '--pairs', pairs, '--output', tmp_path / 'out'],
            'p0.png', 'too small to evaluate')


def test_one_pair_holds_out_its_right_third_and_basis_only_keeps_the_weight_cnn(tmp_path):
    pairs = write_pairs(tmp_path / 'camera', SCENES[:1], size=160)  # the right third: 26 LR pixels wide
    source = source_checkpoint(tmp_path / 'source.pth')
    out = tmp_path / 'out'
    proc = run_cli(['adapt', '--checkpoint', source, '--pairs', pairs, '--output', out, '--train', 'basis',
                    *FAST[:1], '4', *FAST[2:3], '2', *FAST[4:]], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = record_of(out)
    assert record['held_out']['columns'] == [pytest.approx(2 / 3), 1.0]
    assert [p['columns'] for p in record['pairs'] if p['role'] == 'train'] == [[0.0, pytest.approx(2 / 3)]]
    last = torch.load(out / 'experiments' / 'adapt' / 'models' / 'net_g_4.pth')['params']
    first = torch.load(source)['params']
    assert torch.equal(last['weight_net.conv_last.weight'], first['weight_net.conv_last.weight'])
    assert not torch.equal(last['basis'], first['basis'])
    log = ''.join(p.read_text() for p in (out / 'experiments' / 'adapt').glob('train_*.log'))
    assert 'will not be optimized' not in log and "train.trainable ['basis']: 162 of " in log


def test_two_pairs_are_held_out_in_turn_and_model_pth_adapts_on_both(tmp_path):
    pairs = write_pairs(tmp_path / 'camera', SCENES[:2])
    source = source_checkpoint(tmp_path / 'source.pth')
    out = tmp_path / 'out'
    proc = run_cli(['adapt', '--checkpoint', source, '--pairs', pairs, '--output', out, '--iters', '6',
                    '--val-freq', '3', *FAST[4:]], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = record_of(out)
    assert record['held_out']['pairs'] == ['p0.png', 'p1.png'] and 'leave-one-out' in record['held_out']['how']
    assert [(r['name'], r['train'], r['held_out']) for r in record['runs']] == [
        ('adapt_fold1', ['p1.png'], ['p0.png']), ('adapt_fold2', ['p0.png'], ['p1.png']),
        ('adapt', ['p0.png', 'p1.png'], [])]
    assert set(record['curve']) == {'adapt_fold1', 'adapt_fold2'} and set(record['curve']['adapt_fold1']) == {3, 6}
    rows = rows_of(record)
    # Each pair's adapted row is the fold that did not train on it; the least-squares kernel too.
    camera = {p.name: p for p in load_camera_pairs(str(pairs), SCALE, 1)}
    for fold, held in (('adapt_fold1', 'p0.png'), ('adapt_fold2', 'p1.png')):
        fold_net = DMLDegradation.from_checkpoint(str(out / 'experiments' / fold / 'models' / 'net_g_6.pth'),
                                                  noise_sigma=0)
        expected = lr_fidelity(fold_net, [(camera[held], (0., 1.))])['psnr']
        assert [r['psnr'] for r in rows['Adapted']['images'] if r['image'] == held] == [pytest.approx(expected)]
    assert rows['Adapted']['psnr'] > rows['Unadapted']['psnr']
    final = torch.load(out / 'experiments' / 'adapt' / 'models' / 'net_g_6.pth')['params']
    assert record['chosen_iteration'] == 6
    assert torch.equal(torch.load(out / 'model.pth')['params']['basis'], final['basis'])
    assert not (out / 'experiments' / 'adapt' / 'metrics_adapt_heldout.csv').exists()  # nothing held out of it


def test_the_progress_is_shown_and_augment_flip_reaches_the_option_file(tmp_path, camera):
    pairs, source = camera
    out = tmp_path / 'out'
    proc = run_cli(['adapt', '--checkpoint', source, '--pairs', pairs, '--output', out, '--iters', '4',
                    '--val-freq', '2', '--augment', 'flip', *FAST[4:]], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '3 pairs read; checking' in proc.stdout and 'measuring MATLAB bicubic' in proc.stdout
    assert '4/4' in proc.stderr and ('it/s' in proc.stderr or 's/it' in proc.stderr)  # the tqdm bar
    options = yaml.safe_load((out / 'adapt_options.yml').read_text())
    assert options['datasets']['train']['use_hflip'] is True and options['datasets']['train']['use_rot'] is True
    assert record_of(out)['budget']['augment'] == 'flip'


@pytest.mark.parametrize('pairs_count, iters, val_freq', [(3, 5, 3), (2, 2, 5)])
def test_the_weights_at_the_end_of_the_budget_are_kept_whatever_the_validation_frequency(tmp_path, pairs_count,
                                                                                         iters, val_freq):
    pairs = write_pairs(tmp_path / 'camera', SCENES[:pairs_count])
    source = source_checkpoint(tmp_path / 'source.pth')
    out = tmp_path / 'out'
    proc = run_cli(['adapt', '--checkpoint', source, '--pairs', pairs, '--output', out, '--iters', str(iters),
                    '--val-freq', str(val_freq), *FAST[4:]], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = record_of(out)
    assert record['chosen_iteration'] == iters and f'Adapted (iteration {iters} of {iters})' in proc.stdout or \
        f'Adapted (leave-one-out, iteration {iters} of {iters})' in proc.stdout
    final = torch.load(out / 'experiments' / 'adapt' / 'models' / 'net_g_latest.pth')['params']
    assert torch.equal(torch.load(out / 'model.pth')['params']['basis'], final['basis'])


def test_an_adaptation_worse_than_the_source_is_shown_and_model_pth_is_the_source(tmp_path, adapted):
    """A source already adapted to the camera, shaken by a far too high learning rate on every parameter."""
    tmp, _, first = adapted
    pairs, source = tmp / 'camera', first / 'model.pth'
    out = tmp_path / 'out'
    proc = run_cli(['adapt', '--checkpoint', source, '--pairs', pairs, '--output', out, '--iters', '4',
                    '--val-freq', '2', '--train', 'all', '--lr', '0.5', *FAST[4:]], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = record_of(out)
    rows = rows_of(record)
    assert record['chosen_iteration'] == 0 and rows['Adapted']['psnr'] < rows['Unadapted']['psnr']
    assert 'did not beat the unadapted model: model.pth is the unadapted model' in proc.stdout
    assert torch.equal(torch.load(out / 'model.pth')['params']['basis'], torch.load(source)['params']['basis'])


def test_a_shipped_model_is_adapted_by_name(tmp_path):
    """--pretrained realsr-x4 on x4 pairs whose LR is that model's own (aligned by construction)."""
    deg = DMLDegradation.pretrained('realsr-x4', noise_sigma=0)
    (tmp_path / 'camera' / 'HR').mkdir(parents=True)
    (tmp_path / 'camera' / 'LR').mkdir()
    for i, scene in enumerate(SCENES[:3]):
        hr = hr_crop(*scene, size=160)
        rgb = torch.from_numpy(hr[:, :, ::-1].astype(np.float32) / 255.).permute(2, 0, 1)[None]
        with torch.no_grad():
            lr = np.round(deg(rgb)[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255.).astype(np.uint8)
        cv2.imwrite(str(tmp_path / 'camera' / 'HR' / f'p{i}.png'), hr)
        cv2.imwrite(str(tmp_path / 'camera' / 'LR' / f'p{i}.png'), lr)
    out = tmp_path / 'out'
    proc = run_cli(['adapt', '--pretrained', 'realsr-x4', '--pairs', tmp_path / 'camera', '--output', out,
                    '--iters', '2', '--val-freq', '2', '--gt-size', '64', '--batch-size', '2', '--device', 'cpu'],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = record_of(out)
    assert record['source']['pretrained'] == 'realsr-x4' and record['source']['network_g']['scale'] == 4
    assert '| Unadapted (realsr-x4) |' in proc.stdout
    assert DMLDegradation.from_checkpoint(str(out / 'model.pth'), noise_sigma=0).scale == 4
    # --checkpoint takes the name too; an unknown name is one line listing the shipped ones, before OUT exists.
    proc = run_cli(['adapt', '--checkpoint', 'realsr-x4', '--pairs', tmp_path / 'camera', '--output', tmp_path / 'o2',
                    '--iters', '1', '--val-freq', '1', '--gt-size', '64', '--batch-size', '2', '--device', 'cpu'],
                   cwd=tmp_path)
    assert proc.returncode == 0 and record_of(tmp_path / 'o2')['source']['pretrained'] == 'realsr-x4'
    refused(tmp_path, ['--checkpoint', 'realsr-x5', '--pairs', tmp_path / 'camera', '--output', tmp_path / 'o3'],
            'realsr-x5', 'nor a shipped model (city100-nikon-x1, city100-nikon-x2, realsr-x4')


def test_find_pairs_reads_the_three_layouts(tmp_path):
    folder = write_pairs(tmp_path / 'folders', SCENES[:2])
    assert [name for name, _, _ in find_pairs(str(folder))] == ['p0.png', 'p1.png']
    realsr, city = tmp_path / 'realsr', tmp_path / 'city'
    realsr.mkdir()
    city.mkdir()
    for i in range(2):
        shutil.copy(folder / 'HR' / f'p{i}.png', realsr / f'Cam_{i + 1:03d}_HR.png')
        shutil.copy(folder / 'LR' / f'p{i}.png', realsr / f'Cam_{i + 1:03d}_LR2.png')
        shutil.copy(folder / 'HR' / f'p{i}.png', city / f'{i + 1:03d}H.PNG')
        shutil.copy(folder / 'LR' / f'p{i}.png', city / f'{i + 1:03d}L.PNG')
    assert [n for n, _, _ in find_pairs(str(realsr))] == ['Cam_001_HR.png', 'Cam_002_HR.png']
    assert [n for n, _, _ in find_pairs(str(city))] == ['001H.PNG', '002H.PNG']
    (folder / 'LR' / 'p1.png').unlink()
    with pytest.raises(DatasetError, match='p1.png'):
        find_pairs(str(folder))
    with pytest.raises(DatasetError, match='no HR-LR pairs'):
        find_pairs(str(tmp_path / 'folders' / 'HR'))


def test_size_problem_names_the_scale_it_found():
    assert size_problem((128, 128), (64, 64), 2) is None
    assert size_problem((129, 127), (65, 64), 2) is None and size_problem((129, 127), (64, 63), 2) is None
    assert 'x4 pair; the model is x2' in size_problem((128, 128), (32, 32), 2)
    assert 'not 1/2' in size_problem((128, 128), (64, 40), 2)
    assert 'LR 64x63 is not 1/2 of HR 128x128 (expected 64x64)' == size_problem((128, 128), (63, 64), 2)


def test_split_holds_out_a_fifth_of_the_pairs_or_a_band_of_each():
    pairs = list(range(10))
    train, held = split_pairs(pairs, seed=0)
    assert len(held) == 2 and len(train) == 8 and {p for p, _ in train} | {p for p, _ in held} == set(pairs)
    assert split_pairs(pairs, seed=0) == (train, held) and split_pairs(pairs, seed=1) != (train, held)
    train, held = split_pairs([0], seed=0)
    assert [c for _, c in train] == [(0.0, 2 / 3)] and [c for _, c in held] == [(2 / 3, 1.0)]
    assert evaluation_folds([0, 1]) == [([(1, (0., 1.))], [(0, (0., 1.))]), ([(0, (0., 1.))], [(1, (0., 1.))])]
    assert evaluation_folds(pairs, seed=0) == [split_pairs(pairs, seed=0)]
    assert evaluation_folds([0]) == [split_pairs([0])]


def test_the_adaptation_dataset_reads_a_band_of_columns(tmp_path):
    pairs = write_pairs(tmp_path / 'camera', SCENES[:1])
    opt = dict(name='band', type='AdaptationPairsDataset', phase='val', scale=SCALE, color='y',
               pairs=[[str(pairs / 'HR' / 'p0.png'), str(pairs / 'LR' / 'p0.png')]], columns=[0.5, 1.0])
    item = AdaptationPairsDataset(opt)[0]
    assert item['gt'].shape == (1, 128, 64) and item['lq'].shape == (1, 64, 32)
    whole = AdaptationPairsDataset(dict(opt, columns=[0, 1]))[0]
    assert torch.equal(item['lq'], whole['lq'][..., 32:]) and torch.equal(item['gt'], whole['gt'][..., 64:])
    with pytest.raises(DatasetError, match='columns'):
        AdaptationPairsDataset(dict(opt, columns=[0.7, 0.2]))


def test_the_least_squares_kernel_recovers_a_known_kernel():
    torch.manual_seed(0)
    kernel = gaussian_kernel(7, 1.3, dtype=torch.float64, offset=0.5) * 0.9
    hr = torch.rand(1, 1, 80, 80, dtype=torch.float64)
    lr = torch.nn.functional.conv2d(torch.nn.functional.pad(hr, (3, 3, 3, 3), mode='reflect'), kernel[None, None],
                                    stride=2)  # correlation, centred on HR (2i, 2j): the operator's convention
    fitted, mse = least_squares_kernel([(hr, lr)], kernel_size=7, scale=2)
    assert torch.allclose(fitted, kernel, atol=1e-9) and mse < 1e-20


@pytest.mark.skipif(not (SHARED_DATA / 'RealSR_V3_x4_crops').is_dir(), reason='../shared/data is absent')
def test_real_pairs_pass_the_alignment_check_and_a_four_pixel_shift_does_not():
    root = SHARED_DATA / 'RealSR_V3_x4_crops' / 'Nikon' / 'Train' / '4'
    deg = DMLDegradation.pretrained('realsr-x4', noise_sigma=0)
    pair = read_pair('Nikon_031', str(root / 'Nikon_031_HR.png'), str(root / 'Nikon_031_LR4.png'), 4, 1)
    assert alignment_problem(deg, pair) is None
    pair.hr = torch.roll(pair.hr, 4, dims=-1)
    assert 'misaligned' in alignment_problem(deg, pair)
    assert len(load_camera_pairs(str(root.parent.parent.parent / 'Canon' / 'Train' / '4'), 4, 1)) == 35


def test_train_trainable_is_checked_before_training(tmp_path):
    from conftest import expect_option_error, tiny_dml_options
    opt = tiny_dml_options('trainable')
    opt['train']['trainable'] = ['weight_net.conv_lsat']
    expect_option_error(tmp_path, opt, 'train.trainable: no parameter of network_g is named weight_net.conv_lsat')
    opt['train']['trainable'] = 'basis'
    expect_option_error(tmp_path, opt, 'train.trainable must be a list')


def test_auto_resume_continues_an_interrupted_run(tmp_path, camera):
    pairs, source = camera
    out = tmp_path / 'out'
    args = ['adapt', '--checkpoint', source, '--pairs', pairs, '--output', out, '--iters', '4', '--val-freq', '2',
            *FAST[4:]]
    assert run_cli(args, cwd=tmp_path).returncode == 0
    # As if killed after the checkpoint of iteration 2: the later files and the outputs are not there.
    experiment = out / 'experiments' / 'adapt'
    for path in [experiment / 'training_states' / '4.state', experiment / 'models' / 'net_g_4.pth',
                 experiment / 'models' / 'net_g_latest.pth', out / 'model.pth', out / 'adapt.yml']:
        path.unlink()
    proc = run_cli([*args, '--auto_resume'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = ''.join(p.read_text() for p in experiment.glob('train_*.log'))
    assert 'Resuming training from epoch: 0, iter: 2' in log
    assert set(record_of(out)['curve']) == {2, 4} and (out / 'model.pth').is_file()


def test_the_sr_option_file_for_an_adapted_camera_trains_with_two_lines_changed(adapted):
    """options/train_srx4_my_camera.yml with its two marked lines changed (and shrunk to 2 iterations of a tiny x2
    network, since the camera here is x2) trains on the adapted model and validates on the camera's pairs."""
    from conftest import PROJECT_ROOT
    tmp, _, out = adapted
    (tmp / 'sr').mkdir()
    shutil.copytree(tmp / 'camera', tmp / 'sr' / 'my_camera')
    overrides = [f'degradation:checkpoint={out / "model.pth"}', f'datasets:train:dataroot_gt={tmp / "camera" / "HR"}',
                 'scale=2', 'network_g:upscale=2', 'network_g:num_feat=8', 'network_g:num_block=1',
                 'datasets:train:gt_size=32', 'datasets:train:batch_size_per_gpu=2', 'datasets:train:num_worker_per_gpu=0',
                 'train:total_iter=2', 'val:val_freq=2', 'logger:print_freq=1', 'logger:save_checkpoint_freq=2']
    proc = run_cli(['train', '-opt', PROJECT_ROOT / 'options' / 'train_srx4_my_camera.yml', '--force_yml',
                    *overrides], cwd=tmp / 'sr')
    assert proc.returncode == 0, proc.stderr[-3000:]
    csv = (tmp / 'sr' / 'experiments' / 'SRx4_my_camera' / 'metrics_my_camera_pairs.csv').read_text()
    assert csv.startswith('iter,image,psnr,ssim,lpips') and len(csv.splitlines()) == 1 + 5  # iteration 2, once
