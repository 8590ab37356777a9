"""dml_basicsr.degradation.folder_synthesis, degradation.tiled and commands.synthesize (``basicsr synthesize``): offline
Syn-DML synthesis: output layout, BasicSR compatibility, determinism, resume, exact tiling, CLI; its record (runs of
other parameters or inputs are never mixed), outputs that overlap the input or lead through a link, one writer per
output, bad numbers, hostile images and write failures, each refused with one line before anything is written."""
import errno
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

import dml_basicsr.degradation.folder_synthesis as synth
import dml_basicsr.degradation.tiled as tiled_module
from conftest import (CODE_TAGS, HOSTILE_IMAGES, PROJECT_ROOT, assert_refused, hostile, one_error_line, one_line,
                      save_dmlnet, synthesize, tree, write_pngs)
from conftest import ends_within
from dml_basicsr.archs import DMLNet
from dml_basicsr.cli import main as cli_main
from dml_basicsr.data.errors import DatasetError
from dml_basicsr.degradation import DMLDegradation
from dml_basicsr.degradation import degrade_tiled, min_tile_overlap, synthesize_folder
from dml_basicsr.utils.atomic_write import tmp_path as atomic_tmp_path
from dml_basicsr.utils.checkpoint import CheckpointError

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


def test_auto_tile_is_the_whole_image_where_it_fits_and_tiles_where_memory_is_short(checkpoint, tmp_path,
                                                                                       monkeypatch):
    net = make_net(2)  # 32 features at the U-Net's widest: 1280 bytes a HR pixel by the estimate
    short = 2 * 1280 * 130 ** 2  # a 130x130 crop fits: a few tiles of the 130x150 image, not hundreds
    assert tiled_module.auto_tile(net, 130, 150, 'cpu', free=10 ** 9) == 0
    tile = tiled_module.auto_tile(net, 130, 150, 'cpu', free=short)
    margin = tiled_module.min_tile_overlap(net)
    assert 0 < tile <= 130 - 2 * margin and tile % tiled_module.tile_alignment(2) == 0
    big = write_images(tmp_path / 'big', {'big.png': (130, 150, 3, np.uint8)})
    calls = []
    real_degrade_tiled = synth.degrade_tiled
    monkeypatch.setattr(synth, 'degrade_tiled', lambda deg, hr, tile, *a, **k: calls.append(tile) or
                        real_degrade_tiled(deg, hr, tile, *a, **k))
    monkeypatch.setattr(tiled_module, 'free_memory', lambda device: short)
    run(big, tmp_path / 'short', checkpoint, tile_overlap=48)  # tile='auto', the default
    monkeypatch.setattr(tiled_module, 'free_memory', lambda device: 10 ** 10)
    run(big, tmp_path / 'plenty', checkpoint, tile_overlap=48)
    assert calls[0] > 0 and calls[1] == 0  # tiled when short of memory, whole when not
    a, b = (cv2.imread(str(tmp_path / run_name / 'LR' / 'big.png')).astype(int) for run_name in ('short', 'plenty'))
    assert np.abs(a - b).max() <= 1 and (a != b).mean() < 1e-3


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
                 '--device', '--no-progress', '--dsgan', '--scale'):
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


@pytest.fixture
def synth_dir(tmp_path):
    save_dmlnet(tmp_path / 'dml_x2.pth')
    write_pngs(tmp_path / 'D' / 'HR')
    return tmp_path


@pytest.mark.parametrize('input_dir, output_dir, reason', [
    ('D/HR', 'D', "the input is the output's HR/ or LR/"),
    ('D/HR', 'D/HR', 'the same folder'),
    ('D', 'D/HR/syn', 'the output is inside the input'),
])
def test_synthesize_refuses_an_output_that_overlaps_its_input(synth_dir, input_dir, output_dir, reason):
    before = files_of(synth_dir / 'D')
    proc = synthesize(synth_dir, input=input_dir, output=output_dir)
    assert proc.returncode == 2 and reason in one_error_line(proc, 'synthesize')
    assert files_of(synth_dir / 'D') == before  # the source images untouched, nothing added


def test_synthesize_records_its_parameters_and_refuses_to_mix_runs(synth_dir):
    assert synthesize(synth_dir, '--seed', '1').returncode == 0
    record = yaml.safe_load((synth_dir / 'out' / 'synthesis.yml').read_text())
    assert {k: record[k] for k in ('scale', 'noise_sigma', 'seed', 'color')} == dict(scale=2, noise_sigma=5.0,
                                                                                       seed=1, color='rgb')
    assert len(record['checkpoint_sha256']) == 64
    first = files_of(synth_dir / 'out')

    for args, changed in ((['--seed', '2'], 'seed 1 -> 2'), (['--seed', '1', '--noise-sigma', '3'], 'noise_sigma')):
        proc = synthesize(synth_dir, *args)
        assert proc.returncode == 2 and changed in one_error_line(proc, 'synthesize')
        assert files_of(synth_dir / 'out') == first  # nothing mixed in
    save_dmlnet(synth_dir / 'dml_x2.pth', scale=2, nan=False)  # rewritten: the same bytes, the same sha256
    assert synthesize(synth_dir, '--seed', '1').returncode == 0  # same parameters: resumes (all skipped)
    assert files_of(synth_dir / 'out') == first

    proc = synthesize(synth_dir, '--seed', '2', '--overwrite')
    assert proc.returncode == 0 and '2 written' in proc.stdout
    assert synthesize(synth_dir, '--seed', '2', output='fresh').returncode == 0
    assert files_of(synth_dir / 'out') == files_of(synth_dir / 'fresh')  # everything rewritten with seed 2


def test_synthesize_refuses_pairs_without_a_record(synth_dir):
    write_pngs(synth_dir / 'old' / 'HR', names=('x.png',))
    proc = synthesize(synth_dir, output='old')
    assert proc.returncode == 2 and 'no synthesis.yml' in one_error_line(proc, 'synthesize')
    # --overwrite deletes only the pairs a record lists: x.png is not this command's to delete (issue 17)
    proc = synthesize(synth_dir, '--overwrite', output='old')
    assert proc.returncode == 2 and 'HR/x.png' in one_error_line(proc, 'synthesize')
    assert sorted(p.name for p in (synth_dir / 'old').rglob('*')) == ['HR', 'x.png']


def test_non_finite_dml_checkpoint_is_refused(synth_dir):
    save_dmlnet(synth_dir / 'nan.pth', nan=True)
    proc = synthesize(synth_dir, checkpoint='nan.pth')
    line = one_error_line(proc, 'synthesize')
    assert proc.returncode == 2 and 'nan.pth' in line and 'NaN/inf' in line and 'basis' in line
    assert not (synth_dir / 'out').exists()
    with pytest.raises(CheckpointError, match='nan.pth: 1 of its .* weight tensors hold NaN/inf'):
        DMLDegradation.from_checkpoint(str(synth_dir / 'nan.pth'))


def _link(link, target):
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)


LINK_LAYOUTS = {  # name: (make the hostile output layout in root, what the error line says)
    'out/HR -> victim': (lambda r: _link(r / 'out' / 'HR', r / 'victim'), 'out/HR is a symbolic link'),
    'out/LR -> victim': (lambda r: _link(r / 'out' / 'LR', r / 'victim'), 'out/LR is a symbolic link'),
    'out/HR -> relative victim': (lambda r: _link(r / 'out' / 'HR', '../victim'), 'out/HR is a symbolic link'),
    'record -> victim file': (lambda r: _link(r / 'out' / 'synthesis.yml', r / 'victim' / 'a.png'),
                              'synthesis.yml is a symbolic link'),
    'meta_info -> victim file': (lambda r: _link(r / 'out' / 'meta_info.txt', r / 'victim' / 'keep.png'),
                                 'meta_info.txt is a symbolic link'),
    'out -> the input': (lambda r: _link(r / 'out', r / 'D' / 'HR'), 'the same folder'),
    'out -> inside the input': (lambda r: (r / 'D' / 'HR' / 'sub').mkdir() or _link(r / 'out', r / 'D' / 'HR' / 'sub'),
                                'the output is inside the input'),
    'out -> above the input': (lambda r: _link(r / 'out', r / 'D'), "the input is the output's HR/ or LR/"),
}


@pytest.mark.parametrize('overwrite', [False, True])
@pytest.mark.parametrize('layout', sorted(LINK_LAYOUTS))
def test_synthesize_never_writes_or_deletes_through_a_link(synth, layout, overwrite):
    make, fragment = LINK_LAYOUTS[layout]
    make(synth)
    before = tree(synth)
    proc = synthesize(synth, *(['--overwrite'] if overwrite else []))
    assert_refused(proc, 'synthesize', fragment)
    assert tree(synth) == before  # the victim and the input byte-identical, nothing written anywhere


def test_synthesize_refuses_an_input_inside_the_outputs_written_folders(synth):
    write_pngs(synth / 'out' / 'LR' / 'src')
    _link(synth / 'src_link', synth / 'out' / 'LR' / 'src')
    before = tree(synth)
    for input_dir in ('out/LR/src', 'src_link', 'out/LR'):
        for flags in ([], ['--overwrite']):
            proc = synthesize(synth, *flags, input=input_dir)
            assert_refused(proc, 'synthesize', "the input is the output's HR/ or LR/")
    assert tree(synth) == before


def test_overwrite_removes_only_the_recorded_pairs_and_never_follows_a_link(synth):
    assert synthesize(synth).returncode == 0
    (synth / 'out' / 'HR' / 'notes.txt').write_text('mine')
    write_pngs(synth / 'out' / 'extra', names=('keep.png',))
    os.remove(synth / 'out' / 'HR' / 'a.png')
    os.symlink(synth / 'victim' / 'a.png', synth / 'out' / 'HR' / 'a.png')  # a pair file that is a link out
    victim = tree(synth / 'victim')
    proc = synthesize(synth, '--seed', '3', '--overwrite')
    assert proc.returncode == 0 and '2 written' in proc.stdout, proc.stderr
    assert tree(synth / 'victim') == victim
    assert not os.path.islink(synth / 'out' / 'HR' / 'a.png')  # the link was removed, a new pair written
    assert (synth / 'out' / 'HR' / 'notes.txt').read_text() == 'mine'
    assert (synth / 'out' / 'extra' / 'keep.png').exists()
    write_pngs(synth / 'out' / 'LR', names=('z.png',))  # an image that no record lists
    before = tree(synth)
    proc = synthesize(synth, '--seed', '4', '--overwrite')
    assert_refused(proc, 'synthesize', 'LR/z.png', 'deletes only the pairs a record lists')
    assert tree(synth) == before


@pytest.mark.parametrize('recorded', ['../../victim/keep', '{victim}/keep', '../HR/../../victim/keep'])
def test_overwrite_deletes_no_file_a_tampered_record_names_outside_the_pairs(synth, recorded):
    """A record is data someone else may have written: names in it that reach out of HR/ and LR/ delete nothing."""
    assert synthesize(synth).returncode == 0
    record_path = synth / 'out' / 'synthesis.yml'
    record = yaml.safe_load(record_path.read_text())
    record['input_files'][recorded.format(victim=synth / 'victim') + '.png'] = {'size': 1, 'mtime_ns': 1}
    record_path.write_text(yaml.safe_dump(record))
    victim, inputs = tree(synth / 'victim'), tree(synth / 'D')
    proc = synthesize(synth, '--seed', '3', '--overwrite')
    assert proc.returncode == 0, proc.stderr
    assert tree(synth / 'victim') == victim and tree(synth / 'D') == inputs


@pytest.mark.parametrize('tag', CODE_TAGS)
def test_synthesis_record_with_a_python_tag_runs_nothing(synth, tag):
    marker = synth / 'MARKER'
    (synth / 'out').mkdir()
    (synth / 'out' / 'synthesis.yml').write_text(f'seed: {hostile(tag, marker)}\n')
    before = tree(synth)
    for flags in ([], ['--overwrite']):
        assert_refused(synthesize(synth, *flags), 'synthesize', 'synthesis.yml', 'Python object')
    assert not marker.exists() and tree(synth) == before


@pytest.mark.parametrize('change, fragment', [
    (lambda d: write_pngs(d, names=('a.png', 'b.png'), size=(40, 48)), 'a.png size'),  # same names, other images
    (lambda d: write_pngs(d, names=('c.png',)), 'c.png is new'),
    (lambda d: os.remove(d / 'b.png'), 'b.png is gone'),
    (lambda d: os.utime(d / 'a.png', ns=(10**18, 10**18)), 'a.png mtime_ns'),
])
def test_synthesize_rerun_from_another_input_is_refused(synth, change, fragment):
    assert synthesize(synth).returncode == 0
    again = synthesize(synth)
    assert again.returncode == 0 and '0 written, 2 already there' in again.stdout  # the same input resumes
    made = tree(synth / 'out')
    shutil.copytree(synth / 'D' / 'HR', synth / 'other')
    change(synth / 'other')
    for input_dir in ('other',) if fragment != 'a.png mtime_ns' else ('other', 'D/HR'):
        if input_dir == 'D/HR':
            change(synth / 'D' / 'HR')
        proc = synthesize(synth, input=input_dir)
        assert_refused(proc, 'synthesize', 'made from another input', fragment)
        assert tree(synth / 'out') == made


def test_second_writer_of_an_output_is_refused(synth):
    from dml_basicsr.utils.output_folder import output_lock

    with output_lock(str(synth / 'out'), 'basicsr synthesize'):
        before = tree(synth)
        proc = synthesize(synth)
        assert_refused(proc, 'synthesize', 'out is being written by another basicsr synthesize')
        assert tree(synth) == before
    assert synthesize(synth).returncode == 0  # released at the end of the block


def test_a_killed_writer_leaves_no_stuck_lock(synth):
    (synth / 'out').mkdir()
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\nsys.path.insert(0, sys.argv[1])\n'
         'import importlib.util as u\nspec = u.spec_from_file_location("of", sys.argv[1] + "/dml_basicsr/utils/'
         'output_folder.py")\nof = u.module_from_spec(spec); spec.loader.exec_module(of)\n'
         'with of.output_lock(sys.argv[2], "basicsr synthesize"):\n    print("locked", flush=True)\n'
         '    time.sleep(120)\n', str(PROJECT_ROOT), str(synth / 'out')], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        assert_refused(synthesize(synth), 'synthesize', 'being written by another')
    finally:
        holder.kill()  # SIGKILL: no clean-up runs in the holder
        holder.wait()
    proc = synthesize(synth)
    assert proc.returncode == 0 and '2 written' in proc.stdout, proc.stderr


@pytest.mark.parametrize('sigma', ['nan', 'inf', '-inf', '-1', '1e39'])
def test_synthesize_refuses_a_bad_noise_sigma_before_writing(synth, sigma):
    before = tree(synth)
    assert_refused(synthesize(synth, f'--noise-sigma={sigma}'), 'synthesize', 'noise_sigma must be a finite number')
    assert tree(synth) == before


@pytest.mark.parametrize('name', ['empty.png', 'bomb.png', 'bomb.jpg', 'text.jpg'])
def test_synthesize_refuses_a_hostile_image_before_writing_anything(synth, name):
    data, fragment = HOSTILE_IMAGES[name]
    (synth / 'D' / 'HR' / name).write_bytes(data)
    before = tree(synth)
    line = assert_refused(synthesize(synth), 'synthesize', name)
    assert fragment in line or 'cannot decode' in line
    if name != 'text.jpg':  # what the header tells is refused before anything is written
        assert tree(synth) == before


@pytest.mark.parametrize('overwrite', [False, True])
def test_a_fifo_as_the_synthesis_record_is_one_line_without_blocking(synth, overwrite):
    (synth / 'out').mkdir()
    os.mkfifo(synth / 'out' / 'synthesis.yml')
    before = tree(synth)
    with ends_within(20):
        proc = synthesize(synth, *(['--overwrite'] if overwrite else []))
    assert_refused(proc, 'synthesize', os.path.join('out', 'synthesis.yml'), 'not a regular file')
    assert tree(synth) == before


def test_a_legacy_meta_info_over_its_bound_is_refused_before_anything_is_deleted(synth, monkeypatch):
    """A record of an earlier version (without input_files) names its pairs in meta_info.txt, read with a bound."""
    from dml_basicsr.degradation import folder_synthesis

    assert synthesize(synth).returncode == 0
    record = yaml.safe_load((synth / 'out' / 'synthesis.yml').read_text())
    del record['input_files']
    (synth / 'out' / 'synthesis.yml').write_text(yaml.safe_dump(record))
    size = (synth / 'out' / 'meta_info.txt').stat().st_size
    monkeypatch.setattr(folder_synthesis, 'MAX_META_INFO_BYTES', size - 1)
    before = tree(synth)
    assert_refused(synthesize(synth, '--overwrite'), 'synthesize',
                   f'meta_info.txt: {size} bytes, more than the {size - 1} bytes meta_info files may have')
    assert tree(synth) == before
    monkeypatch.setattr(folder_synthesis, 'MAX_META_INFO_BYTES', size)
    proc = synthesize(synth, '--overwrite')
    assert proc.returncode == 0 and '2 written' in proc.stdout, proc.stderr


@pytest.mark.parametrize('code', [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_synthesize_that_cannot_write_is_one_line(synth, monkeypatch, code):
    from dml_basicsr.degradation import folder_synthesis

    def refuse(path, *args, **kwargs):
        raise OSError(code, os.strerror(code), path)

    monkeypatch.setattr(folder_synthesis, 'write_png_atomic', refuse)
    line = one_line(synthesize(synth), 'synthesize', 1)
    assert os.strerror(code) in line and os.path.join('out', 'HR') in line


# (h) a DSGAN degradation ---------------------------------------------------------------------

def test_dsgan_synthesis_writes_the_generators_lr_of_the_written_hr(hr_dir, tmp_path, capsys):
    """``--dsgan PTH --scale S``: the LR is the trained generator's on the bicubic /S of the written HR (no noise
    added, whole images); DML-only options with it, and a scale that is not the checkpoint's, are one line."""
    from dml_basicsr.archs import DSGANDegradation
    from dml_basicsr.degradation.dsgan_degradation import DSGANSynthesis

    torch.manual_seed(0)
    net = DSGANDegradation(num_in_ch=3, scale=2, num_feat=8, num_block=2)
    with torch.no_grad():
        net.generator.conv_last.weight.normal_(0, 0.2)  # far from the bicubic input, so a wrong LR would show
    checkpoint = tmp_path / 'dsgan_x2.pth'
    torch.save({'params': net.state_dict()}, checkpoint)
    out = tmp_path / 'syn'
    base = ['synthesize', '--input', str(hr_dir), '--output', str(out), '--no-progress']
    assert cli_main(base + ['--dsgan', str(checkpoint), '--scale', '2']) == 0
    assert '3 pairs (x2)' in capsys.readouterr().out
    record = yaml.safe_load((out / 'synthesis.yml').read_text())
    assert record['noise_sigma'] == 0 and record['noise'].startswith('none') and record['scale'] == 2
    deg = DSGANSynthesis(net)
    for name in ('colour.png', 'gray.png', 'deep.png'):
        hr = cv2.imread(str(out / 'HR' / name))
        lr = cv2.imread(str(out / 'LR' / name))
        assert lr.shape == (hr.shape[0] // 2, hr.shape[1] // 2, 3)
        expected = deg(to_rgb_tensor(hr))[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255
        assert np.abs(lr.astype(np.float64) - expected).max() <= 0.51, name
        assert np.abs(lr.astype(np.float64) - cv2.resize(hr, lr.shape[1::-1], interpolation=cv2.INTER_AREA)).mean() > 2

    for extra, fragment in [
            (['--dsgan', str(checkpoint)], '--dsgan needs --scale'),
            (['--checkpoint', str(checkpoint), '--scale', '2'], '--scale is for --dsgan only'),
            (['--dsgan', str(checkpoint), '--scale', '2', '--noise-sigma', '5'], 'makes its own noise'),
            (['--dsgan', str(checkpoint), '--scale', '2', '--tile', '64'], 'applied to whole images'),
            (['--dsgan', str(checkpoint), '--scale', '3'], 'not the net_g of a DSGANModel training of scale 3')]:
        target = tmp_path / 'refused'
        rc = cli_main(['synthesize', '--input', str(hr_dir), '--output', str(target), '--no-progress'] + extra)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and fragment in err[0], (extra, err)
        assert not target.exists()


def test_an_output_holding_the_checkpoint_or_the_input_is_refused(synth_dir):
    """--checkpoint s8/meta_info.txt --output s8 overwrote the checkpoint; --output o5 --input o5/src was accepted."""
    (synth_dir / 's8').mkdir()
    shutil.copy(synth_dir / 'dml_x2.pth', synth_dir / 's8' / 'meta_info.txt')
    before = tree(synth_dir / 's8')
    proc = synthesize(synth_dir, output='s8', checkpoint='s8/meta_info.txt')
    assert_refused(proc, 'synthesize', 'the output holds the input', 's8/meta_info.txt')
    assert tree(synth_dir / 's8') == before
    write_pngs(synth_dir / 'o5' / 'src')
    before = tree(synth_dir / 'o5')
    for flags in ([], ['--overwrite']):
        proc = synthesize(synth_dir, *flags, input='o5/src', output='o5')
        assert_refused(proc, 'synthesize', 'the output holds the input')
    assert tree(synth_dir / 'o5') == before


def test_a_target_that_is_not_a_regular_file_is_refused_before_anything_is_deleted(synth_dir):
    """--overwrite with a folder at OUT/LR/a.png deleted the pairs, then failed 'Is a directory'."""
    assert synthesize(synth_dir).returncode == 0
    os.remove(synth_dir / 'out' / 'LR' / 'a.png')
    (synth_dir / 'out' / 'LR' / 'a.png').mkdir()
    (synth_dir / 'out' / 'LR' / 'a.png' / 'mine.txt').write_text('keep')
    before = tree(synth_dir / 'out')
    for flags in ([], ['--overwrite']):
        proc = synthesize(synth_dir, '--seed', '3', *flags)
        assert_refused(proc, 'synthesize', 'LR/a.png exists and is not a regular file')
        assert tree(synth_dir / 'out') == before
