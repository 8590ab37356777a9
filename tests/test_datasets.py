"""dml_basicsr.data.realsr_dataset, city100_dataset and paired_base: RealSRDataset and City100Dataset on tiny fake
layouts, plus the real City100 when present; training patches that cannot be cut are refused up front."""
import math
import os

import cv2
import numpy as np
import pytest
from basicsr.utils.registry import DATASET_REGISTRY

import dml_basicsr  # noqa: F401  (registers the datasets)
from conftest import area_down, expect_option_error, make_city100, make_realsr, realsr_train_options, structured
from dml_basicsr.data.errors import DatasetError

QUANT = 1 / 255 + 1e-4  # one 8-bit step


def build(type_, phase, **opt):
    """The dataset as BasicSR builds it: phase, scale, name and io_backend set."""
    opt = dict(type=type_, name=f'{type_}_{phase}', phase=phase, io_backend={'type': 'disk'}, **opt)
    opt.setdefault('scale', 4)
    return DATASET_REGISTRY.get(type_)(opt)


def to_hwc(t):
    return t.numpy().transpose(1, 2, 0)


# ---------------------------------------------------------------------------------------------- RealSR


def check_pairing(item, levels):
    name = os.path.basename(item['gt_path'])
    prefix = name[:-len('_HR.png')]
    assert os.path.basename(item['lq_path']).startswith(prefix + '_LR')
    level = levels[prefix] / 255
    assert abs(item['gt'].mean().item() - level) < 3 / 255
    assert abs(item['lq'].mean().item() - level) < 3 / 255


def test_realsr_v3_val_pairs_by_name_full_images(tmp_path):
    levels = make_realsr(tmp_path)
    ds = build('RealSRDataset', 'val', dataroot=str(tmp_path), split='Train')
    assert len(ds) == 6
    for item in ds:
        assert item['gt'].shape == (3, 48, 40) and item['lq'].shape == (3, 12, 10)
        check_pairing(item, levels)
        assert np.abs(to_hwc(item['lq']) - area_down(to_hwc(item['gt']), 4)).max() <= QUANT


def test_realsr_v3_train_crops_are_aligned(tmp_path):
    levels = make_realsr(tmp_path)
    ds = build('RealSRDataset', 'train', dataroot=str(tmp_path), gt_size=16, use_hflip=True, use_rot=True)
    for _ in range(3):
        for item in ds:
            assert item['gt'].shape == (3, 16, 16) and item['lq'].shape == (3, 4, 4)
            check_pairing(item, levels)
            assert np.abs(to_hwc(item['lq']) - area_down(to_hwc(item['gt']), 4)).max() <= QUANT


def test_realsr_v3_odd_sizes_are_cropped_to_match(tmp_path):
    make_realsr(tmp_path, size=(50, 43), lr_size=(13, 11))  # LR sides rounded up
    item = build('RealSRDataset', 'val', dataroot=str(tmp_path), split='Train')[0]
    assert item['gt'].shape == (3, 48, 40) and item['lq'].shape == (3, 12, 10)


@pytest.mark.parametrize('phase', ['train', 'val'])
def test_an_lr_one_pixel_short_is_refused_by_the_option_check(tmp_path, phase):
    """check_options (run before BasicSR makes experiments/<name>) compares every pair's sizes from the headers,
    not only the pairs a training happens to draw."""
    make_realsr(tmp_path)
    lr = sorted(tmp_path.rglob('Nikon_012_LR4.png'))[0]
    assert cv2.imwrite(str(lr), cv2.imread(str(lr))[:-1])
    opt = dict(type='RealSRDataset', name='r', phase=phase, dataroot=str(tmp_path), split='Train', gt_size=16,
               scale=4)
    with pytest.raises(DatasetError, match=r'Nikon_012_LR4\.png is 11x10, expected 12x10 for HR .*Nikon_012_HR'):
        DATASET_REGISTRY.get('RealSRDataset').check_options(opt)


def test_realsr_v2_hr_grid(tmp_path):
    levels = make_realsr(tmp_path, grid='hr', split='Test', scale=3)
    ds = build('RealSRDataset', 'val', dataroot=str(tmp_path), scale=3, lr_grid='hr')
    assert len(ds) == 6
    for item in ds:
        assert item['gt'].shape == item['lq'].shape == (3, 48, 40)
        check_pairing(item, levels)
    ds = build('RealSRDataset', 'train', dataroot=str(tmp_path), scale=3, lr_grid='hr', split='Test', gt_size=16)
    item = ds[0]
    assert item['gt'].shape == item['lq'].shape == (3, 16, 16)


def test_realsr_camera_filter_and_y(tmp_path):
    make_realsr(tmp_path)
    ds = build('RealSRDataset', 'train', dataroot=str(tmp_path), cameras=['Nikon'], color='y', gt_size=16)
    assert len(ds) == 3
    for item in ds:
        assert os.path.basename(item['gt_path']).startswith('Nikon_')
        assert item['gt'].shape == (1, 16, 16) and item['lq'].shape == (1, 4, 4)


def test_realsr_default_split_follows_phase(tmp_path):
    make_realsr(tmp_path, split='Train', ids=(1, 2))
    make_realsr(tmp_path, split='Test', ids=(7,))
    assert len(build('RealSRDataset', 'train', dataroot=str(tmp_path), gt_size=16)) == 4
    assert len(build('RealSRDataset', 'val', dataroot=str(tmp_path))) == 2


def test_realsr_id_range_selects_scenes_of_every_camera(tmp_path):
    make_realsr(tmp_path, ids=(1, 5, 12, 30, 31, 35))
    train = build('RealSRDataset', 'train', dataroot=str(tmp_path), split='Train', id_range=[1, 30], gt_size=16)
    val = build('RealSRDataset', 'val', dataroot=str(tmp_path), split='Train', id_range=[31, 35])
    names = lambda ds: sorted(os.path.basename(p) for p, _ in ds.pairs)  # noqa: E731
    assert names(train) == [f'{cam}_{i:03d}_HR.png' for cam in ('Canon', 'Nikon') for i in (1, 5, 12, 30)]
    assert names(val) == [f'{cam}_{i:03d}_HR.png' for cam in ('Canon', 'Nikon') for i in (31, 35)]
    with pytest.raises(DatasetError, match=r"numbers in \[40, 50\]"):
        len(build('RealSRDataset', 'val', dataroot=str(tmp_path), split='Train', id_range=[40, 50]))
    with pytest.raises(DatasetError, match=r"id_range must be \[first, last\]"):
        build('RealSRDataset', 'val', dataroot=str(tmp_path), split='Train', id_range=[35, 31])


def test_realsr_missing_dataroot(tmp_path):
    missing = tmp_path / 'nowhere'
    with pytest.raises(FileNotFoundError) as err:
        build('RealSRDataset', 'val', dataroot=str(missing))
    assert str(missing) in str(err.value) and 'Canon_001_LR4.png' in str(err.value)


def test_realsr_hr_without_lr(tmp_path):
    make_realsr(tmp_path)
    os.remove(tmp_path / 'Nikon' / 'Train' / '4' / 'Nikon_005_LR4.png')
    with pytest.raises(ValueError, match='Nikon_005_HR.png'):
        build('RealSRDataset', 'train', dataroot=str(tmp_path), gt_size=16)


def test_realsr_no_pairs(tmp_path):
    for cam in ('Canon', 'Nikon'):
        (tmp_path / cam / 'Test' / '4').mkdir(parents=True)
    with pytest.raises(ValueError, match='no'):
        build('RealSRDataset', 'val', dataroot=str(tmp_path))


@pytest.mark.parametrize('grid,declared', [('hr', 'lr'), ('lr', 'hr')])
def test_realsr_wrong_lr_grid(tmp_path, grid, declared):
    make_realsr(tmp_path, grid=grid, ids=(1,))
    ds = build('RealSRDataset', 'val', dataroot=str(tmp_path), split='Train', lr_grid=declared)
    with pytest.raises(ValueError) as err:
        ds[0]
    assert 'Canon_001_HR.png' in str(err.value) and 'Canon_001_LR4.png' in str(err.value)


def test_realsr_rejects_other_io_backend(tmp_path):
    make_realsr(tmp_path, ids=(1,))
    opt = dict(type='RealSRDataset', name='x', phase='val', scale=4, dataroot=str(tmp_path), split='Train',
               io_backend={'type': 'memcached'})
    with pytest.raises(DatasetError) as err:
        DATASET_REGISTRY.get('RealSRDataset')(opt)
    assert str(err.value) == ("RealSRDataset 'x': io_backend type 'memcached' is not supported; "
                              'use io_backend: {type: disk} or {type: lmdb}')
    with pytest.raises(DatasetError, match=f'io_backend lmdb reads a folder made by basicsr prepare .* {tmp_path} has'):
        DATASET_REGISTRY.get('RealSRDataset')(dict(opt, io_backend={'type': 'lmdb'}))  # not a prepared folder


# --------------------------------------------------------------------------------------------- color


@pytest.mark.parametrize('type_', ['City100Dataset', 'SyntheticLensDataset'])
def test_bad_color_is_a_one_line_error_naming_the_dataset(tmp_path, type_):
    make_city100(tmp_path)
    opt = dict(dataroot=str(tmp_path)) if type_ == 'City100Dataset' else dict(images=['coffee'])
    with pytest.raises(DatasetError) as err:
        build(type_, 'val', color='lab', **opt)
    assert str(err.value) == f"{type_} '{type_}_val': color must be 'y', 'rgb' or null, got 'lab'"


# --------------------------------------------------------------------------------------------- City100


def city_number(path):
    return int(os.path.basename(path)[:3])


def test_city100_val_pairs_by_number(tmp_path):
    levels = make_city100(tmp_path)
    ds = build('City100Dataset', 'val', dataroot=str(tmp_path))
    assert [city_number(item['gt_path']) for item in ds] == [1, 2, 3, 4]
    for item in ds:
        assert item['gt'].shape == item['lq'].shape == (3, 48, 42)
        assert city_number(item['lq_path']) == city_number(item['gt_path'])
        level = levels[city_number(item['gt_path'])] / 255
        assert abs(item['gt'].mean().item() - level) < 3 / 255
        assert abs(item['lq'].mean().item() - level) < 3 / 255


def test_city100_id_range_train_and_y(tmp_path):
    make_city100(tmp_path)
    ds = build('City100Dataset', 'train', dataroot=str(tmp_path), id_range=[2, 3], gt_size=16, color='y',
               use_hflip=True, use_rot=True)
    assert len(ds) == 2
    assert [city_number(p) for p, _ in ds.pairs] == [2, 3]
    item = ds[1]
    assert item['gt'].shape == item['lq'].shape == (1, 16, 16)


def test_city100_lr_downscale(tmp_path):
    make_city100(tmp_path, size=(50, 43))
    ds = build('City100Dataset', 'val', dataroot=str(tmp_path), lr_downscale=3, scale=3)
    item = ds[0]
    assert item['gt'].shape == (3, 48, 42) and item['lq'].shape == (3, 16, 14)
    lq_grid = cv2.GaussianBlur(structured(50, 43, 65, seed=1), (5, 5), 1.2)[:48, :42, ::-1] / 255.
    assert np.abs(to_hwc(item['lq']) - area_down(lq_grid.astype(np.float32), 3)).max() < 1e-4
    ds = build('City100Dataset', 'train', dataroot=str(tmp_path), lr_downscale=3, scale=3, gt_size=12)
    item = ds[2]
    assert item['gt'].shape == (3, 12, 12) and item['lq'].shape == (3, 4, 4)


def test_city100_lr_downscale_must_match_scale(tmp_path):
    make_city100(tmp_path)
    with pytest.raises(ValueError, match='scale'):
        build('City100Dataset', 'val', dataroot=str(tmp_path), lr_downscale=2, scale=4)
    assert len(build('City100Dataset', 'val', dataroot=str(tmp_path), scale=4)) == 4  # d = 1 ignores scale


def test_city100_errors(tmp_path):
    missing = tmp_path / 'nowhere'
    with pytest.raises(FileNotFoundError, match=str(missing)):
        build('City100Dataset', 'val', dataroot=str(missing))
    make_city100(tmp_path / 'c')
    os.remove(tmp_path / 'c' / '002L.PNG')
    with pytest.raises(ValueError, match='002H.PNG'):
        build('City100Dataset', 'val', dataroot=str(tmp_path / 'c'))
    with pytest.raises(ValueError, match=r'\[7, 9\]'):
        build('City100Dataset', 'val', dataroot=str(tmp_path / 'c'), id_range=[7, 9])
    cv2.imwrite(str(tmp_path / 'c' / '003L.PNG'), structured(40, 42, 90, seed=3))
    ds = build('City100Dataset', 'val', dataroot=str(tmp_path / 'c'), id_range=[3, 3])
    with pytest.raises(ValueError) as err:
        ds[0]
    assert '003H.PNG' in str(err.value) and '003L.PNG' in str(err.value)


def test_city100_odd_images_load_as_3_channel_float(tmp_path):
    gray = structured(24, 20, 100, seed=0)[..., 0]
    rgba = np.concatenate([structured(24, 20, 110, seed=1), np.full((24, 20, 1), 128, np.uint8)], axis=2)
    deep = structured(24, 20, 120, seed=2).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / '001H.PNG'), gray)
    cv2.imwrite(str(tmp_path / '001L.PNG'), rgba)
    cv2.imwrite(str(tmp_path / '002H.PNG'), deep)
    cv2.imwrite(str(tmp_path / '002L.PNG'), deep)
    ds = build('City100Dataset', 'val', dataroot=str(tmp_path))
    first, second = ds[0], ds[1]
    for t in (first['gt'], first['lq'], second['gt'], second['lq']):
        assert t.shape == (3, 24, 20) and t.dtype.is_floating_point
        assert 0 <= t.min() and t.max() <= 1
    assert np.allclose(to_hwc(first['gt']), gray[..., None] / 255., atol=1e-6)
    assert np.allclose(to_hwc(first['lq']), rgba[..., 2::-1] / 255., atol=1e-6)
    assert np.allclose(to_hwc(second['gt']), deep[..., ::-1] / 65535., atol=1e-6)


def test_real_city100(shared_data):
    root = shared_data / 'City100_NikonD5500'
    if not root.is_dir():
        pytest.skip(f'{root} is absent')
    ds = build('City100Dataset', 'val', dataroot=str(root), id_range=[1, 2], color='y')
    assert len(ds) == 2
    for item in ds:
        assert item['gt'].shape == item['lq'].shape == (1, 870, 1218)
        psnr = -10 * math.log10(((item['gt'] - item['lq'])**2).mean().item())
        assert 20 < psnr < 40, f'{item["gt_path"]}: PSNR {psnr:.2f} dB'


@pytest.mark.parametrize('changes, fragment', [
    (dict(gt_size=15), 'datasets.train.gt_size 15 must be a multiple of the scale 2 (e.g. 14)'),
    (dict(gt_size=64), 'gt_size 64 is larger than the HR image'),
])
def test_paired_training_patches_that_cannot_be_cut_are_refused_up_front(tmp_path, changes, fragment):
    opt = realsr_train_options(tmp_path, **changes)
    expect_option_error(tmp_path, opt, fragment)
