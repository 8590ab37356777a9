import os
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

import dml_basicsr  # noqa: F401  (registers everything before any test builds a component)
from cli_runner import run_cli, run_cli_subprocess  # noqa: F401  (the tests import them from here)
from hang_guard import ends_within  # noqa: F401  (likewise)
from dml_basicsr.archs import DMLNet

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / 'shared' / 'data'


@pytest.fixture(scope='session', autouse=True)
def one_torch_thread():
    """Every test on one torch thread: the nets are tiny, and intra-op threading only adds contention (a test step
    took 412 ms with 2 threads, 20 ms with 1, on a 2-core box shared with a training)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_dml_options(name, total_iter=4):
    """The demo option file shrunk to seconds: small images, tiny net, few iterations."""
    with open(PROJECT_ROOT / 'options' / 'demo_dml_lens_x2.yml') as f:
        opt = yaml.safe_load(f)
    opt['name'] = name
    train, val = opt['datasets']['train'], opt['datasets']['val']
    train.update(images=['camera', 'brick'], max_size=96, gt_size=32, batch_size_per_gpu=2, dataset_enlarge_ratio=4)
    val.update(max_size=64, kernel_grid=2)
    opt['network_g'].update(num_basis=3, kernel_size=7, num_feat=8)
    opt['train']['total_iter'] = total_iter
    opt['train']['scheduler']['milestones'] = [1000]
    opt['val']['val_freq'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    return opt


def shrink(opt):
    """A shipped VDSR/RCAN training option dict shrunk to 2 CPU iterations of a tiny network."""
    train = opt['datasets']['train']
    train.update(gt_size=24, batch_size_per_gpu=2, num_worker_per_gpu=0, dataset_enlarge_ratio=2)
    net = opt['network_g']
    if net['type'] == 'VDSR':
        net.update(num_conv=3, num_feat=8)
    else:
        net.update(num_group=1, num_block=1, num_feat=8, squeeze_factor=4)
    opt['train']['total_iter'] = 2
    opt['val']['val_freq'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    return opt


def write_yaml(path, opt):
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def one_error_line(proc, command):
    """The single stderr line of a failed command (asserted to be one line, without a traceback)."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'basicsr {command}: error: '), proc.stderr[-3000:]
    return lines[0]


def expect_option_error(tmp_path, opt, *fragments, command='train'):
    """``basicsr <command>`` of ``opt`` (written to tmp_path/opt.yml) fails with one error line (exit status 2)
    holding every fragment, before any experiment, results or tb_logger folder exists; returns the line."""
    proc = run_cli([command, '-opt', str(write_yaml(tmp_path / 'opt.yml', opt))], cwd=tmp_path)
    line = one_error_line(proc, command)
    assert proc.returncode == 2
    for fragment in fragments:
        assert fragment in line
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'results').exists()
    assert not (tmp_path / 'tb_logger').exists()
    return line


# ------------------------------------------------------------------------------------ fake datasets


def structured(h, w, level, seed):
    """uint8 BGR image: a gentle gradient plus noise around mean ``level`` (which encodes the image id)."""
    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.linspace(-15, 15, h), np.linspace(-10, 10, w))[..., None] * np.array([1., 0.5, -1.])
    img = level + ramp + rng.uniform(-6, 6, (h, w, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def area_down(img, s):
    h, w = img.shape[:2]
    return cv2.resize(img, (w // s, h // s), interpolation=cv2.INTER_AREA)


def make_realsr(root, grid='lr', split='Train', scale=4, cameras=('Canon', 'Nikon'), ids=(1, 5, 12), size=(48, 40),
                lr_size=None):
    """Write a RealSR V3 (grid 'lr') or V2 (grid 'hr') layout; return {basename prefix: mean level}.

    Each folder also holds an LR2 decoy with a very different level, so that pairing by position
    in the sorted listing (instead of by name and scale) gives the wrong LR.
    """
    levels = {}
    h, w = size
    for c, cam in enumerate(cameras):
        folder = root / cam / split / str(scale)
        folder.mkdir(parents=True)
        for i in ids:
            prefix = f'{cam}_{i:03d}'
            levels[prefix] = 40 + 12 * len(levels)
            hr = structured(h, w, levels[prefix], seed=100 * c + i)
            lr = area_down(hr, scale)
            if lr_size is not None:
                lr = cv2.resize(hr, lr_size[::-1], interpolation=cv2.INTER_AREA)
            if grid == 'hr':
                lr = cv2.resize(lr, (w, h), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(folder / f'{prefix}_HR.png'), hr)
            cv2.imwrite(str(folder / f'{prefix}_LR{scale}.png'), lr)
            cv2.imwrite(str(folder / f'{prefix}_LR2.png'), 255 - area_down(hr, 2))
    return levels


def make_city100(root, ids=(1, 2, 3, 4), size=(48, 42)):
    """Write NNNH / NNNL pairs (LR = blurred HR on the HR grid); return {number: mean level}."""
    root.mkdir(parents=True, exist_ok=True)
    levels = {}
    for i in ids:
        levels[i] = 50 + 15 * i
        hr = structured(*size, levels[i], seed=i)
        ext = 'png' if i == 4 else 'PNG'
        cv2.imwrite(str(root / f'{i:03d}H.{ext}'), hr)
        cv2.imwrite(str(root / f'{i:03d}L.{ext}'), cv2.GaussianBlur(hr, (5, 5), 1.2))
    return levels


def flat(h, w, level):
    """uint8 BGR image of constant ``level`` (which encodes the image id) with distinct channels."""
    img = np.empty((h, w, 3), np.uint8)
    img[...] = (level, level + 1, level + 2)
    return img


def make_srrgb(root, sequences=(1, 2, 7), shots=range(1, 8), size=(40, 60), ext='JPG'):
    """Write SR-RAW-like sequences of flat JPGs; shot k of sequence n has level 10 * k + n.

    Each folder also holds a raw file and a text file, which are not shots."""
    for n in sequences:
        folder = root / f'{n:05d}'
        folder.mkdir(parents=True)
        (folder / 'tform.txt').write_text('not an image\n')
        (folder / f'{1:05d}.ARW').write_bytes(b'raw')
        for k in shots:
            assert cv2.imwrite(str(folder / f'{k:05d}.{ext}'), flat(*size, 10 * k + n),
                               [cv2.IMWRITE_JPEG_QUALITY, 100])
    return root


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f'real data folder {SHARED_DATA} is absent')
    return SHARED_DATA


# ---------------------------------------------------------------------------------- one-line errors


def last_error_line(proc, command):
    """The last stderr line of a failed training (BasicSR's log lines come before it); no traceback at all."""
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f'basicsr {command}: error: '), proc.stderr[-3000:]
    return line


def one_line(proc, command, status):
    """The single error line of a failed command that exited with ``status``."""
    line = one_error_line(proc, command)
    assert proc.returncode == status, proc.stderr[-2000:]
    return line


def assert_refused(proc, command, *fragments):
    """The single error line of a command refused with exit status 2, holding every fragment."""
    line = one_error_line(proc, command)
    assert proc.returncode == 2, proc.stderr[-2000:]
    for fragment in fragments:
        assert fragment in line, line
    return line


# ---------------------------------------------------------------- tiny checkpoints, images and runs


def save_dmlnet(path, scale=2, nan=False):
    """A tiny DMLNet checkpoint as ``basicsr train`` writes it; ``nan`` puts a NaN in its basis."""
    torch.manual_seed(0)
    state = DMLNet(num_in_ch=1, num_basis=3, kernel_size=7, scale=scale, num_feat=8).state_dict()
    if nan:
        state['basis'][0, 0, 0] = float('nan')
    torch.save({'params': state}, path)
    return path


def write_pngs(folder, names=('a.png', 'b.png'), size=(40, 44)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        assert cv2.imwrite(str(folder / name), rng.integers(40, 200, (*size, 3)).astype(np.uint8))
    return folder


def tiny_run(root, name='robust', total_iter=4, **changes):
    """Write the tiny DML option file (saving every 2 iterations) into ``root``; its path."""
    opt = tiny_dml_options(name, total_iter=total_iter)
    opt['val']['val_freq'] = 1000
    for key, value in changes.items():
        opt[key] = value
    return write_yaml(root / f'{name}.yml', opt)


def tiny_trained_run(tmp_path_factory):
    """A work folder with the tiny DML training of :func:`tiny_run` (4 iterations, robust.yml): states 2 and 4,
    net_g_2/4.pth; what --auto_resume continues (a module's ``trained`` fixture)."""
    root = tmp_path_factory.mktemp('trained')
    proc = run_cli(['train', '-opt', str(tiny_run(root))], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def sr_options(root, checkpoint, scale=2):
    """A tiny online Syn-DML VDSR option dict on embedded photos, its degradation from ``checkpoint``."""
    opt = tiny_dml_options('sr_typo')
    opt.update(model_type='OnlineSynthesisSRModel', scale=scale,
               network_g=dict(type='VDSR', num_in_ch=1, num_out_ch=1, num_feat=8, num_conv=3, upscale=scale),
               degradation=dict(checkpoint=str(checkpoint), noise_sigma=5))
    opt['datasets']['train'] = dict(name='SynDML', type='OnlineSynthesisDataset', images=['camera'], gt_size=32,
                                    color='y', batch_size_per_gpu=2, dataset_enlarge_ratio=2, num_worker_per_gpu=0)
    return opt


def realsr_train_options(root, **train):
    """The tiny DML options trained on a RealSR layout of 3 scenes x 2 cameras (6 pairs) at x2."""
    make_realsr(root / 'RealSR', scale=2, size=(48, 48))
    opt = tiny_dml_options('bigbatch')
    opt['datasets']['train'] = dict(dict(name='r', type='RealSRDataset', dataroot=str(root / 'RealSR'), gt_size=16,
                                         num_worker_per_gpu=0, batch_size_per_gpu=2, color='y'), **train)
    return opt


def tree(root):
    """Everything under ``root`` without following links: {relative path: bytes, or '-> target' for a link}."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                found[rel] = '-> ' + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, 'rb') as f:
                    found[rel] = f.read()
            else:
                found[rel] = 'dir'
    return found


@pytest.fixture
def synth(tmp_path):
    """A work folder for ``basicsr synthesize``: dml_x2.pth, the input D/HR/ and victim/, which no run may touch."""
    save_dmlnet(tmp_path / 'dml_x2.pth')
    write_pngs(tmp_path / 'D' / 'HR')
    write_pngs(tmp_path / 'victim', names=('a.png', 'b.png', 'keep.png'), size=(30, 30))
    return tmp_path


def synthesize(cwd, *args, input='D/HR', output='out', checkpoint='dml_x2.pth'):
    return run_cli(['synthesize', '--input', input, '--output', output, '--checkpoint', checkpoint,
                    '--no-progress', *args], cwd=cwd)


# ----------------------------------------------------------------------------------- hostile inputs


# Tags that would run `touch MARKER` under PyYAML's full/unsafe loaders (and a custom tag), as YAML text.
CODE_TAGS = [
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/apply:subprocess.call [["touch", "{marker}"]]',
    '!!python/object/new:subprocess.Popen [["touch", "{marker}"]]',
    '!!python/name:os.system',
]


def hostile(tag, marker):
    return tag.format(marker=marker)


def write_hostile_options(path, opt, key, tag, marker):
    """``opt`` written to ``path`` with the value of the top-level ``key`` replaced by the YAML ``tag``."""
    opt = {k: v for k, v in opt.items() if k != key}
    path.write_text(f'{key}: {hostile(tag, marker)}\n' + yaml.safe_dump(opt, sort_keys=False))
    return path


def png_declaring(width, height, body=b'\x00' * 64):
    """A small PNG file whose header declares ``width`` x ``height`` RGB pixels (its data is far too short)."""
    def chunk(kind, data):
        return len(data).to_bytes(4, 'big') + kind + data + zlib.crc32(kind + data).to_bytes(4, 'big')

    ihdr = width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes([8, 2, 0, 0, 0])
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(body)) + chunk(b'IEND', b'')


def jpeg_declaring(width, height):
    """A JPEG file (a real one) whose start-of-frame is rewritten to declare ``width`` x ``height``."""
    ok, encoded = cv2.imencode('.jpg', np.full((8, 8, 3), 128, np.uint8))
    data = bytearray(encoded.tobytes())
    sof = data.index(b'\xff\xc0')
    data[sof + 5:sof + 9] = height.to_bytes(2, 'big') + width.to_bytes(2, 'big')
    return bytes(data)


HOSTILE_IMAGES = {  # file name: (bytes, what the one error line says)
    'empty.png': (b'', 'empty file (0 bytes)'),
    'bomb.png': (png_declaring(60000, 60000), 'declares a 60000x60000 image (3600 megapixels)'),
    'wide.png': (png_declaring(1 << 20, 1024), 'declares a 1048576x1024 image'),
    'none.png': (png_declaring(0, 10), 'declares a 0x10 image (no pixels)'),
    'bomb.jpg': (jpeg_declaring(65000, 65000), 'declares a 65000x65000 image'),
    'truncated.png': (png_declaring(64, 64)[:60], 'truncated PNG file (60 bytes, no end marker)'),
    'truncated.jpg': (jpeg_declaring(8, 8)[:-40], 'truncated JPEG file'),
    'text.jpg': (b'not an image at all\n' * 20, 'cannot decode image'),
}
