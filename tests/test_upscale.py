"""dml_basicsr.commands.upscale and ops.tiled_upscale: ``basicsr upscale`` of photos of any size, in tiles without
seams, with the model named as its training left it."""
import os

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs.srresnet_arch import MSRResNet

from conftest import one_error_line, run_cli, write_yaml
from dml_basicsr.archs import VDSR, DMLNet
from dml_basicsr.ops.tiled_upscale import upscale_tiled
from dml_basicsr.utils.model_manifest import write_manifest

RGB_NET = {'type': 'MSRResNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 2, 'upscale': 2}
Y_NET = {'type': 'VDSR', 'num_in_ch': 1, 'num_out_ch': 1, 'num_feat': 8, 'num_conv': 3, 'upscale': 2}


def rgb_net(seed=0):
    torch.manual_seed(seed)
    return MSRResNet(**{k: v for k, v in RGB_NET.items() if k != 'type'}).eval()


def test_tiles_with_enough_pad_equal_the_whole_image_and_without_it_show_seams():
    net = rgb_net()
    lr = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        whole = net(lr)
        tiled = upscale_tiled(net, lr, 2, tile=16, tile_pad=12)  # MSRResNet(2 blocks): receptive radius 7 LR px
        seams = upscale_tiled(net, lr, 2, tile=16, tile_pad=0)
    assert tiled.shape == whole.shape == (1, 3, 74, 106)
    assert (tiled - whole).abs().max() < 1e-5
    assert (seams - whole).abs().max() > 1e-3  # the test can see a seam


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """A manifest with an RGB x2 MSRResNet and a Y x2 VDSR, as model_zoo/<table>/models.yml holds them."""
    root = tmp_path_factory.mktemp('zoo') / 'model_zoo' / 'tiny'
    root.mkdir(parents=True)
    torch.save({'params': rgb_net().state_dict()}, root / 'rgb.pth')
    torch.manual_seed(1)
    torch.save({'params': VDSR(**{k: v for k, v in Y_NET.items() if k != 'type'}).state_dict()}, root / 'y.pth')
    torch.save({'params': DMLNet(num_in_ch=3, num_basis=2, kernel_size=5, scale=2, num_feat=8).state_dict()},
               root / 'dml.pth')
    write_manifest(str(root / 'models.yml'), [
        dict(label='(r) rgb', network_g=RGB_NET, checkpoint=str(root / 'rgb.pth'), command='made by the test'),
        dict(label='(y) y', network_g=Y_NET, checkpoint=str(root / 'y.pth'), command='made by the test')])
    return root


@pytest.fixture
def photos(tmp_path):
    """Odd photos: 8-bit colour of odd size, gray, RGBA, 16-bit."""
    folder = tmp_path / 'photos'
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / 'colour.png'), rng.integers(0, 255, (23, 41, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / 'gray.png'), rng.integers(0, 255, (30, 20), dtype=np.uint8))
    cv2.imwrite(str(folder / 'alpha.png'), rng.integers(0, 255, (17, 19, 4), dtype=np.uint8))
    cv2.imwrite(str(folder / 'deep.tif'), rng.integers(0, 65535, (25, 26, 3), dtype=np.uint16))
    return folder


SIZES = {'colour': (23, 41), 'gray': (30, 20), 'alpha': (17, 19), 'deep': (25, 26)}


@pytest.mark.parametrize('model', ['manifest:label', 'label', 'pth'])
def test_a_folder_of_odd_photos_comes_out_twice_the_size(models, photos, tmp_path, model):
    spec = {'manifest:label': f'{models / "models.yml"}:(r) rgb', 'label': '(r) rgb', 'pth': str(models / 'rgb.pth')}
    cwd = models.parent.parent  # the label is looked up in ./model_zoo/*/models.yml
    proc = run_cli(['upscale', '-i', str(photos), '-o', str(tmp_path / 'out'), '--model', spec[model], '--tile', '8',
                    '--no-progress'], cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'basicsr upscale: 4 image(s) x2 into' in proc.stdout
    for stem, (h, w) in SIZES.items():
        out = cv2.imread(str(tmp_path / 'out' / f'{stem}_out.png'), cv2.IMREAD_UNCHANGED)
        assert out.dtype == np.uint8 and out.shape == ((2 * h, 2 * w) if stem == 'gray' else (2 * h, 2 * w, 3))


def test_the_tiled_command_writes_what_the_network_gives_on_the_whole_image(models, photos, tmp_path):
    proc = run_cli(['upscale', '-i', str(photos / 'colour.png'), '-o', str(tmp_path / 'out'), '--model',
                    str(models / 'rgb.pth'), '--tile', '8', '--tile-pad', '12', '--suffix', '', '--no-progress'],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rgb = cv2.imread(str(photos / 'colour.png'))[:, :, ::-1].astype(np.float32) / 255.
    with torch.no_grad():
        whole = rgb_net()(torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None])[0].clamp(0, 1).numpy()
    expected = np.round(whole.transpose(1, 2, 0)[:, :, ::-1] * 255.)
    assert np.abs(cv2.imread(str(tmp_path / 'out' / 'colour.png')).astype(np.float32) - expected).max() <= 1


def test_a_y_network_super_resolves_y_and_keeps_the_colour(models, photos, tmp_path):
    proc = run_cli(['upscale', '-i', str(photos / 'colour.png'), '-o', str(tmp_path / 'out'), '--model',
                    f'{models / "models.yml"}:(y) y', '--no-progress'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = cv2.imread(str(tmp_path / 'out' / 'colour_out.png'))
    bicubic = cv2.resize(cv2.imread(str(photos / 'colour.png')), (82, 46), interpolation=cv2.INTER_CUBIC)
    assert out.shape == (46, 82, 3)
    chroma = [cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)[:, :, 1:].astype(np.float32) for img in (out, bicubic)]
    assert np.abs(chroma[0] - chroma[1]).mean() < 6  # the colour is the bicubic one (Y changes it a little)


@pytest.mark.parametrize('case, fragment', [
    ('degradation model', 'not an SR network (a 16x16 input gives 8x8)'),
    ('unknown label', "no row of model_zoo/*/models.yml"),
    ('unknown row', "no row labelled '(q) nothing' (its labels: (r) rgb, (y) y)"),
    ('output inside input', 'outputs never go where what the command reads is'),
    ('same stem', 'would both be written to a_out.png'),
])
def test_refusals_are_one_line_before_anything_is_written(models, photos, tmp_path, case, fragment):
    out, model, source = tmp_path / 'out', str(models / 'rgb.pth'), photos
    if case == 'degradation model':
        model = str(models / 'dml.pth')
    elif case == 'unknown label':
        model = '(q) nothing'
    elif case == 'unknown row':
        model = f'{models / "models.yml"}:(q) nothing'
    elif case == 'output inside input':
        out = photos / 'sr'
    else:
        cv2.imwrite(str(photos / 'a.png'), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(photos / 'a.jpg'), np.zeros((8, 8, 3), np.uint8))
    proc = run_cli(['upscale', '-i', str(source), '-o', str(out), '--model', model, '--no-progress'], cwd=tmp_path)
    assert proc.returncode == 2 and fragment in one_error_line(proc, 'upscale'), proc.stderr[-2000:]
    assert not out.exists()


def test_an_experiment_folder_is_a_model(photos, tmp_path):
    """``--model experiments/NAME``: its option copy's network_g and its latest net_g (here of rgb_net(3), not of
    the older net_g_1.pth)."""
    exp = tmp_path / 'experiments' / 'tiny_x2'
    (exp / 'models').mkdir(parents=True)
    write_yaml(exp / 'train_tiny.yml', dict(name='tiny_x2', network_g=RGB_NET))
    torch.save({'params': rgb_net(seed=0).state_dict()}, exp / 'models' / 'net_g_1.pth')
    torch.save({'params': rgb_net(seed=3).state_dict()}, exp / 'models' / 'net_g_latest.pth')
    proc = run_cli(['upscale', '-i', str(photos / 'colour.png'), '-o', 'out', '--model', 'experiments/tiny_x2',
                    '--tile', '0', '--no-progress'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rgb = cv2.imread(str(photos / 'colour.png'))[:, :, ::-1].astype(np.float32) / 255.
    with torch.no_grad():
        whole = rgb_net(seed=3)(torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None])[0].clamp(0, 1).numpy()
    expected = np.round(whole.transpose(1, 2, 0)[:, :, ::-1] * 255.)
    out = cv2.imread(str(tmp_path / 'out' / 'colour_out.png')).astype(np.float32)
    assert out.shape == expected.shape == (46, 82, 3) and np.abs(out - expected).max() <= 1


def test_cuda_without_cuda_is_refused_before_the_output_exists(models, photos, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)  # run_cli hides CUDA too; this says so here
    proc = run_cli(['upscale', '-i', str(photos), '-o', str(tmp_path / 'out'), '--model', str(models / 'rgb.pth'),
                    '--device', 'cuda', '--no-progress'], cwd=tmp_path)
    errors = [line for line in proc.stderr.splitlines() if 'error' in line]
    assert proc.returncode == 2 and errors == ["basicsr upscale: error: --device 'cuda' requested, but CUDA is not "
                                               'available'], proc.stderr
    assert not (tmp_path / 'out').exists()


def test_an_input_image_linked_to_a_target_is_refused_before_anything_is_written(models, tmp_path):
    """d/p.png -> ../out/q_out.png and a real d/q.png, -o out: the target out/q_out.png is what p.png reads."""
    (tmp_path / 'd').mkdir()
    (tmp_path / 'out').mkdir()
    cv2.imwrite(str(tmp_path / 'out' / 'q_out.png'), np.full((8, 8, 3), 9, np.uint8))
    cv2.imwrite(str(tmp_path / 'd' / 'q.png'), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / 'd' / 'p.png').symlink_to('../out/q_out.png')
    before = (tmp_path / 'out' / 'q_out.png').read_bytes()
    proc = run_cli(['upscale', '-i', 'd', '-o', 'out', '--model', str(models / 'rgb.pth'), '--no-progress'],
                   cwd=tmp_path)
    line = one_error_line(proc, 'upscale')
    assert proc.returncode == 2 and 'holds the input' in line and 'p.png' in line, line
    assert (tmp_path / 'out' / 'q_out.png').read_bytes() == before
    assert sorted(os.listdir(tmp_path / 'out')) == ['q_out.png']
