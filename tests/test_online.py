"""dml_basicsr.degradation.dml_degradation, data.online_synthesis_dataset and models.online_synthesis_sr_model: online
DML degradation: DMLDegradation (its noise_sigma and inputs checked, its shared network never changed),
OnlineSynthesisDataset and OnlineSynthesisSRModel's feed_data."""
import copy
import os

import numpy as np
import pytest
import torch
from basicsr.utils.registry import DATASET_REGISTRY

from conftest import ends_within
from dml_basicsr import DMLDegradation, DMLNet
from dml_basicsr.data.errors import DatasetError
from dml_basicsr.ops import apply_basis_kernels, rgb_to_y


def perturbed_net(scale=2, in_ch=1, seed=0):
    torch.manual_seed(seed)
    net = DMLNet(num_in_ch=in_ch, num_basis=3, kernel_size=7, scale=scale, num_feat=8)
    with torch.no_grad():
        for p in net.weight_net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net.eval()


def save_checkpoint(net, path):
    torch.save({'params': net.state_dict()}, path)
    return path


@pytest.mark.parametrize('scale', [1, 2, 3, 4])
def test_from_checkpoint_reproduces_dmlnet_without_noise(tmp_path, scale):
    net = perturbed_net(scale)
    deg = DMLDegradation.from_checkpoint(save_checkpoint(net, tmp_path / 'net.pth'), noise_sigma=0, clamp=False)
    hr = torch.rand(2, 1, 30, 27)
    with torch.no_grad():
        # bit for bit against the net's own degradation (on the CPU both run the weight CNN channels_last, whose
        # rounding differs from net(hr)'s: this perturbed net's logits reach 2e4, so 1e-6 of them shows)
        assert torch.equal(deg(hr), DMLDegradation(copy.deepcopy(net), noise_sigma=0, clamp=False)(hr))
        torch.testing.assert_close(deg(hr), net(hr), atol=1e-3, rtol=0)
    assert deg.scale == scale and isinstance(deg.net, DMLNet)


def test_y_model_on_rgb_applies_y_predicted_kernels_to_each_channel():
    net = perturbed_net(2)
    deg = DMLDegradation(net, noise_sigma=0, clamp=False)
    rgb = torch.rand(2, 3, 24, 20)
    with torch.no_grad():
        expected = apply_basis_kernels(rgb, net.basis_kernels(), net.predict_weights(rgb_to_y(rgb)), 2)
        out = deg(rgb)
    assert out.shape == (2, 3, 12, 10)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)  # weights predicted only where sampled


def test_noise_statistics_match_sigma():
    deg = DMLDegradation(perturbed_net(1), noise_sigma=5.0, clamp=False, seed=1)
    hr = torch.rand(4, 1, 64, 64)
    residual = deg(hr) - deg.degrade_clean(hr)
    assert abs(residual.std().item() * 255 - 5.0) < 0.1
    assert abs(residual.mean().item() * 255) < 0.1


def test_noise_range_draws_one_sigma_per_image():
    deg = DMLDegradation(perturbed_net(1), noise_sigma=(1.0, 20.0), clamp=False, seed=3)
    hr = torch.rand(8, 1, 64, 64)
    stds = (deg(hr) - deg.degrade_clean(hr)).flatten(1).std(dim=1) * 255
    assert stds.min() > 0.9 and stds.max() < 20.5 and stds.max() - stds.min() > 3


def test_seed_makes_noise_reproducible_and_clamp_round():
    hr = torch.rand(2, 1, 32, 32)
    a = DMLDegradation(perturbed_net(2), seed=7, round_8bit=True)(hr)
    b = DMLDegradation(perturbed_net(2), seed=7, round_8bit=True)(hr)
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert torch.allclose(a * 255, torch.round(a * 255), atol=1e-4)


def test_output_follows_input_dtype_and_device():
    net = perturbed_net(2)
    deg = DMLDegradation(net, noise_sigma=0.0, clamp=False)
    hr = torch.rand(1, 1, 20, 20, dtype=torch.float64)
    out = deg(hr)  # a float32 model on a float64 batch
    assert out.dtype == torch.float64 and out.device.type == 'cpu'
    with torch.no_grad():
        assert torch.allclose(out, perturbed_net(2).double()(hr), atol=1e-12)
        assert deg(hr.float()).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_output_follows_cuda_device():
    deg = DMLDegradation(perturbed_net(2), noise_sigma=5.0, seed=0)
    out = deg(torch.rand(1, 1, 20, 20, device='cuda'))
    assert out.device.type == 'cuda'


def test_wrong_channels_and_bad_checkpoint_raise(tmp_path):
    deg = DMLDegradation(perturbed_net(2), noise_sigma=0)
    with pytest.raises(ValueError, match='2 channels'):
        deg(torch.rand(1, 2, 16, 16))
    torch.save({'params': {'x': torch.zeros(1)}}, tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match='not a DMLNet state dict'):
        DMLDegradation.from_checkpoint(tmp_path / 'bad.pth')


def _syn_opt(**kw):
    opt = dict(type='OnlineSynthesisDataset', name='syn', phase='train', scale=2, images=['camera', 'brick'],
               gt_size=32, color='y')
    opt.update(kw)
    return opt


def test_online_synthesis_dataset_gives_gt_crops_and_placeholders():
    ds = DATASET_REGISTRY.get('OnlineSynthesisDataset')(_syn_opt())
    item = ds[0]
    assert item['synthetic'] is True
    assert item['gt'].shape == (1, 32, 32) and item['lq'].shape == (1, 16, 16)
    assert item['lq'].abs().sum() == 0
    hr_grid = DATASET_REGISTRY.get('OnlineSynthesisDataset')(_syn_opt(lr_grid='hr'))
    assert hr_grid[0]['lq'].shape == (1, 32, 32)


def test_the_earlier_names_still_build_the_same_components():
    from basicsr.utils.registry import MODEL_REGISTRY

    from dml_basicsr.data import OnlineSynthesisDataset
    from dml_basicsr.models import OnlineSynthesisSRModel

    old = DATASET_REGISTRY.get('SynDMLDataset')(_syn_opt(type='SynDMLDataset'))
    new = DATASET_REGISTRY.get('OnlineSynthesisDataset')(_syn_opt())
    assert isinstance(old, OnlineSynthesisDataset) and old.sources == new.sources and len(old) == len(new)
    assert issubclass(MODEL_REGISTRY.get('DMLOnlineSRModel'), OnlineSynthesisSRModel)


def test_online_synthesis_dataset_mixes_real_pairs_at_the_ratio():
    real = dict(type='SyntheticLensDataset', images=['coffee'], noise_sigma=0)
    ds = DATASET_REGISTRY.get('OnlineSynthesisDataset')(_syn_opt(real=real, real_ratio=0.3))
    items = [ds[i % len(ds)] for i in range(400)]
    real_items = [item for item in items if not item['synthetic']]
    assert 0.2 < len(real_items) / len(items) < 0.4
    assert all(item['lq'].abs().sum() > 0 and item['lq'].shape == (1, 16, 16) for item in real_items)
    assert all(item['lq'].abs().sum() == 0 for item in items if item['synthetic'])


def test_online_synthesis_dataset_reads_disk_and_lmdb(tmp_path):
    import cv2
    import lmdb
    import numpy as np
    folder = tmp_path / 'hr'
    folder.mkdir()
    img = (np.random.default_rng(0).random((40, 44, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(folder / 'a_HR.png'), img)
    cv2.imwrite(str(folder / 'a_LR2.png'), img[::2, ::2])
    disk = DATASET_REGISTRY.get('OnlineSynthesisDataset')(_syn_opt(images=None, dataroot_gt=str(folder),
                                                                   gt_glob='*_HR.png'))
    assert len(disk) == 1 and disk[0]['gt'].shape == (1, 32, 32)
    db = tmp_path / 'hr.lmdb'
    env = lmdb.open(str(db), map_size=10 * 2**20)
    with env.begin(write=True) as txn:
        txn.put(b'a_HR', cv2.imencode('.png', img)[1].tobytes())
    env.close()
    (db / 'meta_info.txt').write_text('a_HR.png (40,44,3) 1\n')
    from_lmdb = DATASET_REGISTRY.get('OnlineSynthesisDataset')(
        _syn_opt(images=None, dataroot_gt=str(db), io_backend={'type': 'lmdb'}, use_hflip=False, use_rot=False))
    assert len(from_lmdb) == 1 and from_lmdb[0]['gt'].shape == (1, 32, 32)


def test_an_hr_file_swapped_for_a_fifo_is_one_line_without_blocking(tmp_path):
    """The HR files are listed when the dataset is built and read at each item: what is there then is read with a
    bound, regular files only."""
    import cv2
    img = (np.random.default_rng(0).random((40, 44, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / 'a.png'), img)
    ds = DATASET_REGISTRY.get('OnlineSynthesisDataset')(_syn_opt(images=None, dataroot_gt=str(tmp_path)))
    assert ds[0]['gt'].shape == (1, 32, 32)
    os.remove(tmp_path / 'a.png')
    os.mkfifo(tmp_path / 'a.png')
    with ends_within(10), pytest.raises(DatasetError, match=r'a\.png: not a regular file'):
        ds[0]


def test_online_synthesis_dataset_takes_glob_lists_and_folder_plus_embedded_photos(tmp_path):
    import cv2
    import numpy as np
    img = (np.random.default_rng(0).random((40, 44, 3)) * 255).astype(np.uint8)
    for number in range(1, 34):
        cv2.imwrite(str(tmp_path / f'{number:03d}H.PNG'), img)
    city100_train = ['0[0-2][1-9]H.PNG', '0[1-3]0H.PNG']
    ds = DATASET_REGISTRY.get('OnlineSynthesisDataset')(_syn_opt(images=None, dataroot_gt=str(tmp_path),
                                                                 gt_glob=city100_train))
    assert [os.path.basename(path) for _, path in ds.sources] == [f'{n:03d}H.PNG' for n in range(1, 31)]
    both = DATASET_REGISTRY.get('OnlineSynthesisDataset')(_syn_opt(images=['camera'], dataroot_gt=str(tmp_path),
                                                          gt_glob='03[1-3]H.PNG', phase='val'))
    names = [both[i]['image_name'] for i in range(len(both))]
    assert names == ['031H', '032H', '033H', 'skimage_camera']


def test_online_synthesis_dataset_errors():
    with pytest.raises(DatasetError, match='gt_size'):
        DATASET_REGISTRY.get('OnlineSynthesisDataset')(_syn_opt(gt_size=None))
    with pytest.raises(DatasetError, match='nosuch'):
        DATASET_REGISTRY.get('OnlineSynthesisDataset')(_syn_opt(images=['nosuch']))
    with pytest.raises(FileNotFoundError, match='missing_dir'):
        DATASET_REGISTRY.get('OnlineSynthesisDataset')(_syn_opt(images=None, dataroot_gt='missing_dir'))


@pytest.mark.parametrize('scale', [1, 2])
def test_fixed_kernel_degradation_is_the_fixed_kernel_net_plus_seeded_noise(scale):
    from dml_basicsr.archs import FixedKernelNet
    hr = torch.rand(2, 3, 30, 28)
    options = dict(fixed_kernel=dict(kernel='gaussian', sigma=1.5, scale=scale), noise_sigma=5.0, seed=4,
                   clamp=False)
    deg = DMLDegradation.from_options(options)
    clean = FixedKernelNet(scale=scale, kernel='gaussian', sigma=1.5)(hr)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(4)) * (5.0 / 255)
    assert deg.scale == scale
    assert torch.allclose(deg(hr), clean + noise, atol=1e-6)
    with torch.no_grad():
        assert not torch.allclose(clean, hr[..., ::scale, ::scale], atol=1e-3)  # it did blur


def test_degradation_section_needs_exactly_one_source():
    with pytest.raises(ValueError, match='exactly one of checkpoint.*it has none'):
        DMLDegradation.from_options({'noise_sigma': 5})
    with pytest.raises(ValueError, match='it has pretrained, fixed_kernel'):
        DMLDegradation.from_options({'pretrained': 'city100-nikon-x1', 'fixed_kernel': {'kernel': 'gaussian'}})
    with pytest.raises(ValueError, match="unknown option.*sigmma"):
        DMLDegradation.from_options({'fixed_kernel': {'kernel': 'gaussian', 'sigmma': 2}})
    with pytest.raises(ValueError, match="kernel must be 'bicubic', 'gaussian' or 'identity'"):
        DMLDegradation.from_options({'fixed_kernel': {'kernel': 'box'}})


def test_online_synthesis_dataset_cache_gives_the_same_items(tmp_path):
    import random

    import cv2
    import numpy as np
    rng = np.random.default_rng(1)
    for name in ('a.png', 'b.png'):
        cv2.imwrite(str(tmp_path / name), (rng.random((50, 60, 3)) * 255).astype(np.uint8))
    opt = _syn_opt(images=['camera'], dataroot_gt=str(tmp_path), gt_glob='*.png')
    plain, cached = (DATASET_REGISTRY.get('OnlineSynthesisDataset')(dict(opt, cache=c)) for c in (False, True))
    assert sorted(cached.cache) == [('embedded', 'camera'), ('file', str(tmp_path / 'a.png')),
                                    ('file', str(tmp_path / 'b.png'))]
    for index in range(3):
        random.seed(index)
        a = plain[index]
        random.seed(index)
        b = cached[index]
        assert torch.equal(a['gt'], b['gt'])
    with pytest.raises(DatasetError, match="OnlineSynthesisDataset 'syn': cache needs .* cache_max_gb 1e-06"):
        DATASET_REGISTRY.get('OnlineSynthesisDataset').check_options(dict(opt, cache=True, cache_max_gb=1e-6))


BAD_SIGMAS = [float('nan'), float('inf'), -1.0, [5.0, 1.0], [float('nan'), 2.0], [1.0, float('inf')], [1.0, 2.0, 3.0],
              'five', True, 255.5, 1e39, [1.0, 256.0]]


@pytest.mark.parametrize('sigma', BAD_SIGMAS, ids=repr)
def test_a_bad_noise_sigma_is_refused_when_built_in_every_interface(sigma):
    from dml_basicsr.degradation import DMLDegradation
    from dml_basicsr.integrations.mmengine import DMLDegrade

    net = DMLNet(num_basis=2, kernel_size=5, scale=2, num_feat=8)
    for build in (lambda: DMLDegradation(net, noise_sigma=sigma),
                  lambda: DMLDegradation.fixed_kernel(sigma=1.0, noise_sigma=sigma),
                  lambda: DMLDegradation.from_options({'pretrained': 'city100-nikon-x2', 'noise_sigma': sigma}),
                  lambda: DMLDegrade(pretrained='city100-nikon-x2', noise_sigma=sigma)):
        with pytest.raises(ValueError, match='noise_sigma must be a finite number >= 0'):
            build()


def test_a_noise_sigma_of_at_most_255_is_taken_and_one_above_is_named():
    from dml_basicsr.degradation import DMLDegradation
    from dml_basicsr.degradation.dml_degradation import sigma_range

    net = DMLNet(num_basis=2, kernel_size=5, scale=2, num_feat=8)
    assert DMLDegradation(net, noise_sigma=[0, 255]).noise_sigma == [0, 255] and sigma_range(255) == (255.0, 255.0)
    with pytest.raises(ValueError, match=r'noise_sigma must be a finite number >= 0 and <= 255 .*got 1e\+39$'):
        DMLDegradation(net, noise_sigma=1e39)


def test_a_low_precision_call_never_changes_the_shared_network():
    from dml_basicsr.degradation import DMLDegradation

    torch.manual_seed(0)
    net = DMLNet(num_basis=3, kernel_size=5, scale=2, num_feat=8)
    deg = DMLDegradation(net, noise_sigma=0)
    hr = torch.rand(1, 1, 24, 20)
    before = deg(hr)
    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        out = deg(hr.to(dtype))
        assert out.dtype == dtype
        assert all(p.dtype == torch.float32 for p in net.parameters())
        torch.testing.assert_close(out.float(), before, atol=1e-2, rtol=0)
    assert torch.equal(deg(hr), before)


@pytest.mark.parametrize('hr, fragment', [
    (torch.randint(0, 255, (1, 1, 16, 16), dtype=torch.uint8), 'must be floating point'),
    (torch.rand(1, 16, 16), r'must be a \(B, C, H, W\) tensor, got \(1, 16, 16\)'),
    (torch.rand(1, 1, 16, 16) * 255, r'in \[0, 1\], got .*0-255 images'),
    (torch.full((1, 1, 16, 16), float('nan')), r'finite and in \[0, 1\]'),
    (torch.rand(1, 1, 16, 16) - 2, r'finite and in \[0, 1\]'),
    (torch.rand(0, 1, 16, 16), 'input is empty'),
    (np.zeros((1, 1, 16, 16), np.float32), r'must be a \(B, C, H, W\) tensor, got ndarray'),
])
def test_degradation_refuses_inputs_it_would_make_garbage_of(hr, fragment):
    from dml_basicsr.degradation import DMLDegradation

    deg = DMLDegradation(DMLNet(num_basis=2, kernel_size=5, scale=2, num_feat=8))
    with pytest.raises(ValueError, match=fragment):
        deg(hr)
