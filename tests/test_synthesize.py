"""Offline Syn-DML synthesis: output layout, BasicSR compatibility, determinism, resume, exact tiling, CLI."""
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

import dml_basicsr.degradation.folder_synthesis as synth
import dml_basicsr.degradation.tiled as tiled_module
from conftest import PROJECT_ROOT
from dml_basicsr.archs import DMLNet
from dml_basicsr.cli import main as cli_main
from dml_basicsr.data.errors import DatasetError
from dml_basicsr.degradation import DMLDegradation
from dml_basicsr.degradation import degrade_tiled, min_tile_overlap, synthesize_folder
from dml_basicsr.utils.atomic_write import tmp_path as atomic_tmp_path

# (file name, array): sizes are not multiples of the scale; 8-bit BGR, gray, 16-bit BGR.
IMAGES = {
    'colour.png': (53, 70, 3, np.uint8),
    'gray.bmp': (45, 61, None, np.uint8),
    'deep.png': (57, 66, 3, np.uint16),
}


def make_net(scale, seed=0):
    """A small DMLNet whose weights vary across the image (gains raised so tiling errors would show)."""
    torch.manual_seed(seed)
    net = DMLNet(num_in_ch=1, num_basis=3, kernel_size=7, scale=scale, num_feat=8)
    with torch.no_grad():
        for m in net.weight_net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(2.0)
                m.bias.uniform_(-0.1, 0.1)
        net.weight_net.conv_last.weight.normal_(0, 0.3)
        net.basis.add_(0.05 * torch.randn_like(net.basis))
    return net.eval()


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'net_g_x2.pth'
    torch.save({'params': make_net(2).state_dict()}, path)
    return path


def write_images(folder, images=IMAGES, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, (h, w, c, dtype) in images.items():
        top = 160 if dtype == np.uint8 else 160 * 257
        shape = (h, w) if c is None else (h, w, c)
        img = rng.integers(top // 4, top, size=shape).astype(dtype)
        img = cv2.GaussianBlur(img, (5, 5), 1.0)  # some structure for the weight CNN
        assert cv2.imwrite(str(folder / name), img)
    return folder


@pytest.fixture(scope='module')
def hr_dir(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp('hr_in'))


def run(hr, out, ckpt, **kw):
    kw.setdefault('progress', False)
    return synthesize_folder(str(hr), str(out), str(ckpt), **kw)


def files_of(out):
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob('*')) if p.is_file()}


def to_rgb_tensor(bgr_uint8):
    return torch.from_numpy(bgr_uint8[:, :, ::-1].astype(np.float32) / 255.).permute(2, 0, 1)[None].contiguous()


# (a) layout ----------------------------------------------------------------------------------

def test_outputs_layout_sizes_and_meta_info(hr_dir, checkpoint, tmp_path):
    out = tmp_path / 'syn'
    result = run(hr_dir, out, checkpoint)
    names = ['colour.png', 'deep.png', 'gray.png']
    assert result == {'scale': 2, 'names': names, 'written': 3, 'skipped': 0}
    assert (out / 'meta_info.txt').read_text() == ''.join(f'{n}\n' for n in names)
    assert sorted(p.name for p in (out / 'HR').iterdir()) == names  # no temporary files left
    assert sorted(p.name for p in (out / 'LR').iterdir()) == names
    for name, (h, w, _, dtype) in IMAGES.items():
        stem = os.path.splitext(name)[0] + '.png'
        hr = cv2.imread(str(out / 'HR' / stem), cv2.IMREAD_UNCHANGED)
        lr = cv2.imread(str(out / 'LR' / stem), cv2.IMREAD_UNCHANGED)
        assert hr.dtype == lr.dtype == np.uint8
        assert hr.shape == (h // 2 * 2, w // 2 * 2, 3)
        assert lr.shape == (h // 2, w // 2, 3)
        src = cv2.imread(str(hr_dir / name), cv2.IMREAD_UNCHANGED)
        src = src[:hr.shape[0], :hr.shape[1]]
        if dtype == np.uint16:
            src = np.round(src.astype(np.float64) / 65535. * 255.).astype(np.uint8)
        if src.ndim == 2:
            src = np.repeat(src[:, :, None], 3, axis=2)
        assert np.array_equal(hr, src)  # the HR is the input, cropped top-left (16-bit -> 8-bit)


def test_lr_is_the_models_degradation_of_the_written_hr(hr_dir, checkpoint, tmp_path):
    deg = DMLDegradation.from_checkpoint(str(checkpoint), noise_sigma=0)
    for sigma in (0, 5):
        out = tmp_path / f'sigma{sigma}'
        run(hr_dir, out, checkpoint, noise_sigma=sigma)
        hr = cv2.imread(str(out / 'HR' / 'colour.png'))
        lr = cv2.imread(str(out / 'LR' / 'colour.png'))
        clean = deg.degrade_clean(to_rgb_tensor(hr))[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255.
        diff = lr.astype(np.float64) - clean
        if sigma == 0:
            assert np.abs(diff).max() <= 0.5 + 1e-3  # RGB order, Y weights, quantisation all match
        else:
            assert 4.0 < diff.std() < 6.0 and abs(diff.mean()) < 0.5


# (b) BasicSR reads it --------------------------------------------------------------------------

def test_basicsr_paired_image_dataset_reads_the_output(hr_dir, checkpoint, tmp_path):
    from basicsr.data.paired_image_dataset import PairedImageDataset

    out = tmp_path / 'syn'
    run(hr_dir, out, checkpoint)
    opt = dict(dataroot_gt=str(out / 'HR'), dataroot_lq=str(out / 'LR'), meta_info_file=str(out / 'meta_info.txt'),
               io_backend={'type': 'disk'}, filename_tmpl='{}', phase='val', scale=2)
    val = PairedImageDataset(opt)
    assert len(val) == 3
    for i in range(3):
        item = val[i]
        assert os.path.basename(item['lq_path']) == os.path.basename(item['gt_path'])
        assert item['gt'].shape[0] == item['lq'].shape[0] == 3
        assert tuple(item['gt'].shape[1:]) == tuple(2 * d for d in item['lq'].shape[1:])
    train = PairedImageDataset(dict(opt, io_backend={'type': 'disk'}, phase='train', gt_size=32, use_hflip=True,
                                    use_rot=True))  # (BasicSR pops 'type' from the io_backend dict)
    item = train[0]
    assert tuple(item['gt'].shape) == (3, 32, 32) and tuple(item['lq'].shape) == (3, 16, 16)


# (c) determinism -----------------------------------------------------------------------------

def test_runs_are_byte_identical_and_noise_depends_on_seed_and_name_only(hr_dir, checkpoint, tmp_path):
    first, second = tmp_path / 'a', tmp_path / 'b'
    run(hr_dir, first, checkpoint, seed=7)
    run(hr_dir, second, checkpoint, seed=7)
    assert files_of(first) == files_of(second)

    # One image alone (other processing order/position) gets the same noise.
    alone = tmp_path / 'alone'
    alone.mkdir()
    shutil.copy(hr_dir / 'gray.bmp', alone / 'gray.bmp')
    run(alone, tmp_path / 'c', checkpoint, seed=7)
    assert (tmp_path / 'c' / 'LR' / 'gray.png').read_bytes() == (first / 'LR' / 'gray.png').read_bytes()

    run(hr_dir, tmp_path / 'd', checkpoint, seed=8)
    assert (tmp_path / 'd' / 'LR' / 'gray.png').read_bytes() != (first / 'LR' / 'gray.png').read_bytes()
    assert (tmp_path / 'd' / 'HR' / 'gray.png').read_bytes() == (first / 'HR' / 'gray.png').read_bytes()


# (d) resume ----------------------------------------------------------------------------------

def test_interrupted_run_resumes_without_redoing_finished_images(hr_dir, checkpoint, tmp_path, monkeypatch):
    clean = tmp_path / 'clean'
    run(hr_dir, clean, checkpoint)
    out = tmp_path / 'resumed'

    real_write = synth.write_png_atomic
    calls = []

    def crash_on_fourth_write(path, img):
        calls.append(path)
        if len(calls) == 4:  # the 2nd image's LR: die half-way through its temporary file
            with open(atomic_tmp_path(path), 'wb') as f:
                f.write(b'\x89PNG partial')
            raise KeyboardInterrupt
        real_write(path, img)

    monkeypatch.setattr(synth, 'write_png_atomic', crash_on_fourth_write)
    with pytest.raises(KeyboardInterrupt):
        run(hr_dir, out, checkpoint)
    monkeypatch.setattr(synth, 'write_png_atomic', real_write)

    stray = os.path.basename(atomic_tmp_path(calls[3]))
    assert sorted(p.name for p in (out / 'LR').iterdir()) == sorted(['colour.png', stray])
    assert (out / 'HR' / 'deep.png').exists() and not (out / 'LR' / 'deep.png').exists()
    assert not (out / 'meta_info.txt').exists()
    done = {p: p.stat().st_mtime_ns for p in (out / 'HR' / 'colour.png', out / 'LR' / 'colour.png')}

    result = run(hr_dir, out, checkpoint)
    assert (result['written'], result['skipped']) == (2, 1)
    assert {p: p.stat().st_mtime_ns for p in done} == done  # the finished pair was not rewritten
    assert files_of(out) == files_of(clean)  # stray temp file gone, everything equals a clean run

    # A deleted file is remade alone; the others stay untouched.
    (out / 'LR' / 'gray.png').unlink()
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob('*.png') if p.name != 'gray.png'}
    result = run(hr_dir, out, checkpoint)
    assert (result['written'], result['skipped']) == (1, 2)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert files_of(out) == files_of(clean)


# (e) tiling ----------------------------------------------------------------------------------

@pytest.mark.parametrize('scale', [1, 2, 3])
def test_tiled_degradation_equals_untiled(scale, monkeypatch):
    net = make_net(scale)
    deg = DMLDegradation(net, noise_sigma=0)
    overlap = 48
    assert min_tile_overlap(net) <= overlap
    torch.manual_seed(1)
    # 300x260 has sides that are multiples of 4; 258x301 not (the decoder's bilinear scale is then
    # not exactly 2 and the crops must use the whole image's coordinate mapping).
    for h, w in ((300, 260), (258, 301)):
        hr = torch.nn.functional.avg_pool2d(torch.rand(1, 3, h // scale * scale + 2, w // scale * scale + 2), 3, 1)
        ref = deg.degrade_clean(hr)
        tiled = degrade_tiled(deg, hr, tile=64, tile_overlap=overlap)
        assert tiled.shape == ref.shape
        assert (tiled - ref).abs().max().item() < 1e-4, (scale, h, w)

    # The check is sensitive: a margin below the receptive field breaks it, and is refused.
    with pytest.raises(ValueError, match='too small'):
        degrade_tiled(deg, hr, tile=64, tile_overlap=12)
    monkeypatch.setattr(tiled_module, 'min_tile_overlap', lambda _net: 0)
    assert (degrade_tiled(deg, hr, tile=64, tile_overlap=12) - ref).abs().max().item() > 1e-4


def test_receptive_field_bound_holds():
    torch.manual_seed(0)
    wn = make_net(1).weight_net.double()
    x = torch.rand(1, 1, 142, 142, dtype=torch.float64, requires_grad=True)  # 142: not a multiple of 4
    reach = 0
    for p in (20, 71, 121):
        wn(x)[0, :, p, p].sum().backward()
        rows = (x.grad[0, 0].abs().sum(1) > 0).nonzero().flatten()
        reach = max(reach, p - rows.min().item(), rows.max().item() - p)
        x.grad = None
    assert 0 < reach <= wn.receptive_radius()


def test_folder_with_tiles_matches_whole_images(checkpoint, tmp_path):
    big = write_images(tmp_path / 'big', {'big.png': (130, 150, 3, np.uint8)})
    run(big, tmp_path / 'tiled', checkpoint, tile=64, tile_overlap=48)
    run(big, tmp_path / 'whole', checkpoint, tile=0)
    a = cv2.imread(str(tmp_path / 'tiled' / 'LR' / 'big.png')).astype(int)
    b = cv2.imread(str(tmp_path / 'whole' / 'LR' / 'big.png')).astype(int)
    assert a.shape == (65, 75, 3) and np.abs(a - b).max() <= 1 and (a != b).mean() < 1e-3


# errors --------------------------------------------------------------------------------------

def test_bad_inputs_are_clear_errors(hr_dir, checkpoint, tmp_path):
    broken = write_images(tmp_path / 'broken', {'ok.png': (20, 20, 3, np.uint8)})
    (broken / 'bad.jpg').write_bytes(b'not an image')
    with pytest.raises(DatasetError, match='bad.jpg'):
        run(broken, tmp_path / 'o1', checkpoint)
    clash = write_images(tmp_path / 'clash', {'a.png': (20, 20, 3, np.uint8), 'a.jpg': (20, 20, 3, np.uint8)})
    with pytest.raises(DatasetError, match='a.png'):
        run(clash, tmp_path / 'o2', checkpoint)
    not_ckpt = tmp_path / 'junk.pth'
    not_ckpt.write_text('junk')
    with pytest.raises(ValueError, match='junk.pth'):
        run(hr_dir, tmp_path / 'o3', not_ckpt)
    with pytest.raises(ValueError, match='tile_overlap'):
        run(hr_dir, tmp_path / 'o4', checkpoint, tile=64, tile_overlap=8)


def test_fitted_noise_offline_is_the_online_noise(hr_dir, tmp_path):
    """``--noise fitted`` draws DMLDegradation's own fitted noise: the LR on disk is the noise-free LR plus what
    ``add_noise`` draws from the image's generator, to the 8-bit rounding; a strong signal-dependent noise."""
    from dml_basicsr.degradation.noise_fit import noise_file, noise_path, write_noise_file

    ckpt = tmp_path / 'net.pth'
    torch.save({'params': make_net(2).state_dict()}, ckpt)
    entry = dict(a=[0.02, 0.01, 0.03], b=[1e-4, 1e-4, 1e-4])
    write_noise_file(noise_path(ckpt), noise_file(entry, 'rgb', ckpt))
    run(hr_dir, tmp_path / 'out', ckpt, noise='fitted')
    record = (tmp_path / 'out' / 'synthesis.yml').read_text()
    assert 'noise: fitted (sha256 ' in record and 'noise_sigma: null' in record
    deg = DMLDegradation.from_checkpoint(str(ckpt), noise='fitted')
    hr8 = cv2.imread(str(tmp_path / 'out' / 'HR' / 'colour.png'))
    clean = deg.degrade_clean(to_rgb_tensor(hr8))
    expected = deg.add_noise(clean, synth.noise_generator(0, 'colour.png'))[0].permute(1, 2, 0).numpy()[:, :, ::-1]
    lr8 = cv2.imread(str(tmp_path / 'out' / 'LR' / 'colour.png')).astype(np.float32) / 255.
    assert np.abs(lr8 - expected).max() <= 0.5 / 255 + 1e-4
    assert np.abs(lr8 - clean[0].permute(1, 2, 0).numpy()[:, :, ::-1]).std() > 0.02  # the noise is there
    with pytest.raises(ValueError, match='holds pairs made with other parameters .*noise'):
        run(hr_dir, tmp_path / 'out', ckpt)  # AWGN into the fitted-noise folder


@pytest.mark.parametrize('bad', ['float.tiff', 'tiny.png', 'int32.tif'])
def test_an_input_that_would_stop_the_run_is_refused_before_the_output_exists(checkpoint, tmp_path, bad):
    """The inputs sort before the bad one, so a check made while writing would leave pairs and a record that block
    the corrected rerun."""
    folder = write_images(tmp_path / 'in', {'a.png': (20, 20, 3, np.uint8)})
    arrays = {'float.tiff': np.zeros((20, 20, 3), np.float32), 'tiny.png': np.zeros((1, 1, 3), np.uint8),
              'int32.tif': np.zeros((20, 20), np.int32)}
    assert cv2.imwrite(str(folder / bad), arrays[bad])
    with pytest.raises(DatasetError, match=rf'{bad}: (unsupported pixel type|image 1x1 is too small)'):
        run(folder, tmp_path / 'out', checkpoint)
    assert not (tmp_path / 'out').exists()
    (folder / bad).unlink()
    assert run(folder, tmp_path / 'out', checkpoint)['written'] == 1


# (f) CLI -------------------------------------------------------------------------------------

def _start_cli(args, cwd):
    """Start ``python -m dml_basicsr <args>`` (as conftest.run_cli does, but without waiting)."""
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    return subprocess.Popen([sys.executable, '-m', 'dml_basicsr', *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_cli_help_and_missing_input(tmp_path):
    missing = tmp_path / 'no_such_folder'
    # Both at once: most of their time is importing torch.
    help_proc = _start_cli(['synthesize', '--help'], tmp_path)
    missing_proc = _start_cli(['synthesize', '--input', str(missing), '--output', str(tmp_path / 'out'),
                               '--checkpoint', str(tmp_path / 'x.pth')], tmp_path)
    out, _ = help_proc.communicate(timeout=120)
    assert help_proc.returncode == 0
    for flag in ('--input', '--output', '--checkpoint', '--noise-sigma', '--seed', '--tile', '--tile-overlap',
                 '--device', '--no-progress'):
        assert flag in out
    _, err = missing_proc.communicate(timeout=120)
    assert missing_proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('basicsr synthesize: error:') and str(missing) in lines[0]
    assert not (tmp_path / 'out').exists()


def test_cli_runs_in_process(hr_dir, checkpoint, tmp_path, capsys):
    out = tmp_path / 'cli'
    rc = cli_main(['synthesize', '--input', str(hr_dir), '--output', str(out), '--checkpoint', str(checkpoint),
                   '--seed', '3', '--no-progress'])
    assert rc == 0 and '3 pairs (x2)' in capsys.readouterr().out
    run(hr_dir, tmp_path / 'api', checkpoint, seed=3)
    assert files_of(out) == files_of(tmp_path / 'api')

    (tmp_path / 'junk.pth').write_text('junk')
    rc = cli_main(['synthesize', '--input', str(hr_dir), '--output', str(tmp_path / 'o'), '--checkpoint',
                   str(tmp_path / 'junk.pth'), '--no-progress'])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and 'junk.pth' in err[0]
    with pytest.raises(SystemExit):
        cli_main(['--help'])
    assert 'synthesize' in capsys.readouterr().out
