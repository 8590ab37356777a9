"""Pictures: basis grid, weight maps, per-pixel kernels, SR crops; ``basicsr visualize``; tb_logger images."""
import cv2
import numpy as np
import pytest
import torch

from conftest import run_cli, tiny_dml_options, write_yaml
from dml_basicsr.archs import DirectKPN, DMLNet, VDSR
from dml_basicsr.data.embedded import load_embedded
from dml_basicsr.visualization.kernel_pictures import LABEL_WIDTH, kernel_grid, weight_map_grid
from dml_basicsr.visualization.paper_figures import image_tensor, sr_crop

GAP = 2


def tile(grid, index, cols, height, width, gap=GAP):
    r, c = divmod(index, cols)
    y, x = gap + r * (height + gap), gap + c * (width + gap)
    return grid[y:y + height, x:x + width]


def minmax_uint8(a):
    a = np.asarray(a, dtype=np.float64)
    return np.rint((a - a.min()) / (a.max() - a.min()) * 255).astype(np.uint8)


def test_basis_grid_tiles_are_the_normalised_kernels():
    torch.manual_seed(0)
    net = DMLNet(num_basis=5, kernel_size=7, basis_init='random')
    grid = kernel_grid(net.basis_kernels(), cols=3, zoom=4)
    assert grid.shape == (2 * 28 + 3 * GAP, 3 * 28 + 4 * GAP)
    raw = net.basis.detach().double().numpy()
    for m in range(5):
        t = tile(grid, m, 3, 28, 28)
        assert (t == np.kron(t[::4, ::4], np.ones((4, 4), np.uint8))).all()  # zoomed by pixel repetition
        normalised = raw[m] / raw[m].sum()
        assert abs(normalised.sum() - 1) < 1e-9
        assert np.abs(t[::4, ::4].astype(int) - minmax_uint8(normalised).astype(int)).max() <= 1
    assert (tile(grid, 5, 3, 28, 28) == 255).all()  # the unused sixth cell stays blank


def test_weight_map_grid_tiles_are_the_weights():
    w = torch.rand(3, 10, 12)
    grid = weight_map_grid(w, cols=2)
    assert grid.shape == (2 * 10 + 3 * GAP, 2 * 12 + 3 * GAP)
    stretched = weight_map_grid(w, cols=2, stretch=True)
    for m in range(3):
        assert np.abs(tile(grid, m, 2, 10, 12).astype(int) - np.rint(w[m].numpy() * 255)).max() <= 1
        assert np.abs(tile(stretched, m, 2, 10, 12).astype(int) - minmax_uint8(w[m].numpy())).max() <= 1


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """A DMLNet and a DirectKPN checkpoint, and a VDSR x2 as an option file and as an experiment folder."""
    root = tmp_path_factory.mktemp('figure_models')
    torch.manual_seed(0)
    dml = DMLNet(num_in_ch=1, num_basis=4, kernel_size=7, num_feat=4)
    torch.save({'params': dml.state_dict()}, root / 'dml.pth')
    torch.save({'params': DirectKPN(num_in_ch=1, kernel_size=5, num_feat=4).state_dict()}, root / 'kpn.pth')
    vdsr = VDSR(num_in_ch=1, num_out_ch=1, num_feat=4, num_conv=3, upscale=2)
    torch.save({'params': vdsr.state_dict()}, root / 'vdsr.pth')
    network_g = dict(type='VDSR', num_in_ch=1, num_out_ch=1, num_feat=4, num_conv=3, upscale=2)
    write_yaml(root / 'vdsr.yml', dict(network_g=network_g, path=dict(pretrain_network_g=str(root / 'vdsr.pth'))))
    exp = root / 'experiments' / 'VDSR_x2'
    (exp / 'models').mkdir(parents=True)
    # As BasicSR copies it: the command atop, the --force_yml overrides only there (upscale 1 -> 2).
    write_yaml(exp / 'train_vdsr.yml', dict(network_g=dict(network_g, upscale=1)))
    body = (exp / 'train_vdsr.yml').read_text()
    (exp / 'train_vdsr.yml').write_text('# GENERATE TIME: Fri Nov 27 03:04:35 2026\n# CMD:\n# basicsr train -opt '
                                        'options/x.yml --force_yml name=VDSR_x2 network_g:upscale=2 --auto_resume\n\n'
                                        + body)
    torch.save({'params': vdsr.state_dict()}, exp / 'models' / 'net_g_latest.pth')
    return dict(root=root, dml=dml, vdsr=vdsr, exp=exp)


def test_visualize_writes_every_figure(models, tmp_path):
    root = models['root']
    proc = run_cli(['visualize', '--image', 'embedded:chelsea', '--output', str(tmp_path / 'fig'),
                    '--dml', str(root / 'dml.pth'), '--kpn', str(root / 'kpn.pth'), '--grid', '3',
                    '--sr', f'opt={root / "vdsr.yml"}', '--sr', f'exp={models["exp"]}', '--crop', '40,50,32'],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    read = {name: cv2.imread(str(tmp_path / 'fig' / name), cv2.IMREAD_UNCHANGED)
            for name in ('basis.png', 'weights.png', 'weights_stretched.png', 'kernels.png', 'kernel_points.png', 'sr_crops.png')}
    chelsea = load_embedded('chelsea')
    h, w = chelsea.shape[:2]
    assert read['basis.png'].shape == (7 * 8 + 2 * GAP, 4 * 7 * 8 + 5 * GAP)
    assert read['weights.png'].shape == read['weights_stretched.png'].shape == (h + 2 * GAP, 4 * w + 5 * GAP)
    with torch.no_grad():
        weights = models['dml'].predict_weights(image_tensor(chelsea, 1))[0].numpy()
    assert np.abs(tile(read['weights.png'], 2, 4, h, w).astype(int) - np.rint(weights[2] * 255)).max() <= 1
    # 3 x 3 points, each a DML row above a DirectKPN row, kernels padded to 7 x 7, zoom 6, a column naming the rows.
    assert read['kernels.png'].shape == (6 * 42 + 7 * GAP, LABEL_WIDTH + 3 * 42 + 4 * GAP)
    assert (read['kernels.png'][:, :LABEL_WIDTH] < 128).any()  # the labels are written there
    assert read['kernel_points.png'].shape == (h, w, 3)
    # LR, two SR models, 64 px tiles (32 px crop x2), labels underneath.
    sr = read['sr_crops.png']
    assert sr.shape == (64 + 22, 3 * 64 + 2 * 4, 3)
    with torch.no_grad():
        full = models['vdsr'](image_tensor(chelsea, 1))[0, 0].clamp(0, 1).numpy()
    expected = np.rint(full[80:144, 100:164] * 255)
    for i in (1, 2):  # the crop, computed with context, equals the crop of the whole image's output
        tile_i = sr[:64, i * 68:i * 68 + 64, 0].astype(int)
        assert np.abs(tile_i - expected).max() <= 1
    assert (sr[:64, :64] == cv2.resize(np.rint(chelsea[40:72, 50:82] * 255).astype(np.uint8), (64, 64),
                                       interpolation=cv2.INTER_NEAREST)).all()


def test_sr_crop_near_the_border_matches_the_full_output(models):
    img = load_embedded('camera')[:60, :70]
    with torch.no_grad():
        full = models['vdsr'](image_tensor(img, 1))[0]
    crop = sr_crop(models['vdsr'], img, (0, 54, 16))
    assert torch.allclose(crop, full[:, 0:32, 108:140], atol=1e-6)


@pytest.mark.parametrize('args, message', [
    (['--image', 'embedded:chelsea'], 'nothing to draw'),
    (['--image', 'embedded:nope', '--dml', 'DML'], "unknown embedded image 'nope'"),
    (['--image', 'embedded:chelsea', '--dml', 'VDSR_OPT'], 'is not a DML model'),
    (['--image', 'embedded:chelsea', '--dml', 'missing.pth'], 'missing.pth: checkpoint not found'),
    (['--image', 'embedded:chelsea', '--dml', 'DML', '--kpn', 'experiments/gone'], 'experiments/gone: not found'),
    (['--image', 'embedded:chelsea', '--sr', 'x=VDSR_OPT', '--crop', '0,0,999'], 'must lie inside'),
    (['--image', 'embedded:chelsea', '--sr', 'x=VDSR_PTH'], 'no models.yml beside it lists it'),
    (['--image', 'embedded:chelsea', '--center-crop', '301', '--dml', 'DML'], '--center-crop 301: must be 1..300'),
    (['--image', 'embedded:chelsea', '--center-crop', '0', '--dml', 'DML'], '--center-crop 0: must be 1..300'),
])
def test_visualize_errors_are_one_line(models, tmp_path, args, message):
    root = models['root']
    subs = {'DML': str(root / 'dml.pth'), 'VDSR_OPT': str(root / 'vdsr.yml'), 'VDSR_PTH': str(root / 'vdsr.pth')}
    for key, path in subs.items():
        args = [a.replace(key, path) for a in args]
    proc = run_cli(['visualize', '--output', str(tmp_path / 'fig'), *args], cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / 'fig').exists()


def test_center_crop_draws_the_central_square(models, tmp_path):
    root = models['root']
    chelsea = load_embedded('chelsea')  # 300 x 451
    top, left = (300 - 64) // 2, (451 - 64) // 2
    proc = run_cli(['visualize', '--image', 'embedded:chelsea', '--center-crop', '64', '--output', str(tmp_path / 'fig'),
                    '--dml', str(root / 'dml.pth')], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    weights_png = cv2.imread(str(tmp_path / 'fig' / 'weights.png'), cv2.IMREAD_UNCHANGED)
    with torch.no_grad():
        weights = models['dml'].predict_weights(image_tensor(chelsea[top:top + 64, left:left + 64], 1))[0].numpy()
    assert weights_png.shape == (64 + 2 * GAP, 4 * 64 + 5 * GAP)
    assert np.abs(tile(weights_png, 1, 4, 64, 64).astype(int) - np.rint(weights[1] * 255)).max() <= 1


def zoo_with_vdsr(models, tmp_path, sha256=None):
    """<tmp>/zoo/vdsr.pth listed in <tmp>/zoo/models.yml with its network_g, as model_zoo/<table>/ holds them."""
    from dml_basicsr.utils.checkpoint import file_sha256

    zoo = tmp_path / 'zoo'
    zoo.mkdir()
    pth = zoo / 'vdsr.pth'
    pth.write_bytes((models['root'] / 'vdsr.pth').read_bytes())
    network_g = dict(type='VDSR', num_in_ch=1, num_out_ch=1, num_feat=4, num_conv=3, upscale=2)
    write_yaml(zoo / 'models.yml', dict(rows=[dict(label='(a) tiny', network_g=network_g, checkpoint='vdsr.pth',
                                                   sha256=sha256 or file_sha256(pth), command='basicsr train')]))
    return pth


def test_a_checkpoint_listed_in_the_models_yml_beside_it_loads_with_its_network(models, tmp_path):
    from dml_basicsr.archs.network_loading import load_network

    net = load_network(str(zoo_with_vdsr(models, tmp_path)))
    assert isinstance(net, VDSR) and not net.training
    x = torch.rand(1, 1, 12, 14)
    with torch.no_grad():
        assert torch.equal(net(x), models['vdsr'].eval()(x))


def test_a_listed_checkpoint_of_another_sha256_is_refused(models, tmp_path):
    from dml_basicsr.archs.network_loading import load_network
    from dml_basicsr.utils.checkpoint import CheckpointError

    pth = zoo_with_vdsr(models, tmp_path, sha256='0' * 64)
    with pytest.raises(CheckpointError, match=r"models\.yml: rows\[0\] \('\(a\) tiny'\): checkpoint .* has sha256"):
        load_network(str(pth))


def test_validation_pictures_go_to_tb_logger(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    opt = tiny_dml_options('tb_pictures', total_iter=2)
    opt['logger']['use_tb_logger'] = True
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'opt.yml', opt))], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = EventAccumulator(str(tmp_path / 'tb_logger' / 'tb_pictures'), size_guidance={'images': 0})
    events.Reload()
    tags = events.Tags()['images']
    assert {'SkimageLensVal/basis', 'SkimageLensVal/weights', 'SkimageLensVal/kernels'} <= set(tags)
    basis = events.Images('SkimageLensVal/basis')[-1]
    png = cv2.imread(str(next((tmp_path / 'experiments' / 'tb_pictures' / 'visualization' / 'SkimageLensVal')
                              .glob('basis_2.png'))), cv2.IMREAD_UNCHANGED)
    assert (basis.height, basis.width) == png.shape


def test_a_long_noise_plot_title_wraps_instead_of_being_cut_off():
    from dml_basicsr.visualization.noise_plots import line_plot_panels

    panels = [('channel Y', [('fitted', [0, 255], [1, 6], 'line'), ('real', [10, 200], [2, 5], 'points')])]
    short = line_plot_panels(panels, 'realsr-x4')
    long = line_plot_panels(panels, 'realsr-x4 on options/train_dml_realsr_crops_x4.yml, the pairs of 30 scenes of '
                                    'two cameras, Y channel, residuals of flat regions binned by intensity')
    assert short.dtype == np.uint8 and short.shape[1] == long.shape[1] == 420
    assert long.shape[0] >= short.shape[0] + 32  # two more lines of title, not a wider (cut) one


def test_lr_comparison_shows_the_real_lr_each_degradations_lr_and_the_hr():
    from basicsr.utils import tensor2img
    from dml_basicsr.degradation import DMLDegradation
    from dml_basicsr.visualization.paper_figures import FigureError, labelled_row, lr_comparison_figure

    rng = np.random.default_rng(0)
    hr = cv2.GaussianBlur(rng.integers(0, 256, (64, 48, 3)).astype(np.uint8), (5, 5), 1.0)
    lr = cv2.resize(hr, (12, 16), interpolation=cv2.INTER_AREA)
    bicubic = DMLDegradation.fixed_kernel(kernel='bicubic', scale=4, noise_sigma=0)
    bicubic_lr = tensor2img(bicubic(image_tensor(hr.astype(np.float32) / 255., 3))[0])
    figure = lr_comparison_figure([('bicubic', bicubic_lr), ('dark', bicubic_lr // 2)], hr, lr, (2, 3, 8))
    side = 32  # 8 LR pixels, enlarged x4
    tiles = [figure[:side, i * (side + 4):i * (side + 4) + side] for i in range(4)]
    assert figure.shape == labelled_row([tiles[0]] * 4, ['x'] * 4).shape
    assert np.array_equal(tiles[0], cv2.resize(lr[2:10, 3:11], (side, side), interpolation=cv2.INTER_NEAREST))
    assert abs(tiles[2].mean() - tiles[1].mean() / 2) < 1  # each degradation's own LR
    assert np.array_equal(tiles[3], hr[8:40, 12:44])
    with pytest.raises(FigureError, match='not an integer multiple'):
        lr_comparison_figure([('bicubic', bicubic_lr)], hr[:63], lr, (0, 0, 4))
    with pytest.raises(FigureError, match='dark: LR of 8x6, the real LR is 16x12'):
        lr_comparison_figure([('dark', bicubic_lr[::2, ::2])], hr, lr, (0, 0, 4))
