"""dml_basicsr.data.paired_base, pair_transforms, image_cache and prepared_lmdb: the paired datasets' fast path: crop
before converting, the decoded-image cache, LMDB sub-images (``basicsr prepare``); a corrupted LMDB is one line.

Items must equal those of the straightforward path (decode the whole pair to float, align, convert,
then crop) for the same random state; written here as it was before the fast path.
"""
import os
import random

import cv2
import numpy as np
import pytest
import torch
from basicsr.data.transforms import augment
from basicsr.utils.registry import DATASET_REGISTRY

from conftest import make_realsr, one_error_line, realsr_train_options, run_cli, structured, write_yaml
from dml_basicsr.data import paired_base
from dml_basicsr.data.errors import DatasetError
from dml_basicsr.data.image_io import convert_color, read_image
from dml_basicsr.data.pair_transforms import pair_to_tensors, paired_random_crop
from dml_basicsr.data.prepared_lmdb import subimage_boxes


def build(type_, phase, **options):
    opt = dict(type=type_, name=f'{type_}_{phase}', phase=phase, io_backend={'type': 'disk'}, scale=4)
    opt.update(options)
    return DATASET_REGISTRY.get(type_)(opt)


def full_image_align(ds, gt, lq):
    """The alignment as it was: crop the float images, resize City100's whole LR."""
    if type(ds).__name__ == 'City100Dataset':
        d = ds.downscale
        h, w = gt.shape[0] // d, gt.shape[1] // d
        gt, lq = gt[:h * d, :w * d], lq[:h * d, :w * d]
        return gt, cv2.resize(lq, (w, h), interpolation=cv2.INTER_AREA) if d > 1 else lq
    s = ds.crop_scale
    h, w = gt.shape[0] // s, gt.shape[1] // s
    return gt[:h * s, :w * s], lq[:h, :w]


def full_image_item(ds, index):
    """(gt, lq) tensors the straightforward way: whole pair to float, align, convert, crop, flip."""
    gt_path, lq_path = ds.pairs[index]
    gt, lq = full_image_align(ds, read_image(gt_path), read_image(lq_path))
    gt, lq = convert_color(gt, ds.opt.get('color')), convert_color(lq, ds.opt.get('color'))
    if ds.is_train:
        gt, lq = paired_random_crop(gt, lq, ds.opt['gt_size'], ds.crop_scale, gt_path)
        gt, lq = augment([gt, lq], ds.opt.get('use_hflip', False), ds.opt.get('use_rot', False))
    return pair_to_tensors(gt, lq)


def assert_items_equal(ds, reference, rounds=3):
    """ds[i] equals ``reference(i)`` (a (gt, lq) pair or an item) to the bit, for the same random state."""
    for seed in range(rounds):
        for index in range(len(ds)):
            random.seed(1000 * seed + index)
            item = ds[index]
            random.seed(1000 * seed + index)
            want = reference(index)
            want = (want['gt'], want['lq']) if isinstance(want, dict) else want
            assert torch.equal(item['gt'], want[0]) and torch.equal(item['lq'], want[1]), (seed, index)
            assert item['gt'].dtype == item['lq'].dtype == torch.float32


def make_odd_city100(root, size=(51, 45)):
    """City100 pairs of every odd kind: 8-bit BGR, gray HR with RGBA LR, 16-bit BGR, 16-bit gray."""
    root.mkdir(exist_ok=True)
    hr = [structured(*size, 60 + 20 * i, seed=i) for i in range(4)]
    lr = [cv2.GaussianBlur(img, (5, 5), 1.2) for img in hr]
    files = {
        1: (hr[0], lr[0]),
        2: (hr[1][..., 0], np.concatenate([lr[1], np.full(size + (1,), 200, np.uint8)], axis=2)),
        3: (hr[2].astype(np.uint16) * 257 + 3, lr[2].astype(np.uint16) * 257),
        4: (hr[3][..., 1].astype(np.uint16) * 250, lr[3][..., 1].astype(np.uint16) * 250),
    }
    for i, (h, low) in files.items():
        assert cv2.imwrite(str(root / f'{i:03d}H.png'), h) and cv2.imwrite(str(root / f'{i:03d}L.png'), low)
    return root


# ------------------------------------------------------------------------------ crop before converting


@pytest.mark.parametrize('phase', ['train', 'val'])
@pytest.mark.parametrize('color', ['y', None])
@pytest.mark.parametrize('downscale', [1, 2])
@pytest.mark.parametrize('cache', [False, True])
def test_city100_fast_path_equals_full_image_path(tmp_path, phase, color, downscale, cache):
    root = make_odd_city100(tmp_path / 'city')
    ds = build('City100Dataset', phase, dataroot=str(root), color=color, lr_downscale=downscale, scale=downscale,
               gt_size=16, use_hflip=True, use_rot=True, cache=cache)
    assert len(ds.cache) == (8 if cache else 0)
    assert_items_equal(ds, lambda i: full_image_item(ds, i))


@pytest.mark.parametrize('grid', ['lr', 'hr'])
@pytest.mark.parametrize('phase', ['train', 'val'])
def test_realsr_fast_path_equals_full_image_path(tmp_path, grid, phase):
    lr_size = (13, 11) if grid == 'lr' else None  # LR sides rounded up: the HR is cropped to 48x40
    make_realsr(tmp_path, grid=grid, ids=(1, 2), size=(50, 43), lr_size=lr_size)
    ds = build('RealSRDataset', phase, dataroot=str(tmp_path), split='Train', lr_grid=grid, color='y', gt_size=16,
               use_hflip=True, use_rot=True)
    assert_items_equal(ds, lambda i: full_image_item(ds, i))


def make_drealsr(root, scale=2, size=(42, 38)):
    for kind in ('HR', 'LR'):
        (root / f'test_{kind}').mkdir(parents=True)
    for i in range(2):
        hr = structured(*size, 70 + 30 * i, seed=i)
        cv2.imwrite(str(root / 'test_HR' / f'DSC_{i:04d}_x{scale}.png'), hr)
        cv2.imwrite(str(root / 'test_LR' / f'DSC_{i:04d}_x1.png'),
                    cv2.resize(hr, (-(-size[1] // scale), -(-size[0] // scale)), interpolation=cv2.INTER_AREA))
    return root


@pytest.mark.parametrize('phase', ['train', 'val'])
def test_drealsr_fast_path_equals_full_image_path(tmp_path, phase):
    ds = build('DRealSRDataset', phase, dataroot=str(make_drealsr(tmp_path)), scale=2, gt_size=12, use_rot=True,
               cache=True)
    assert_items_equal(ds, lambda i: full_image_item(ds, i))


# ------------------------------------------------------------------------------------- the cache


def test_cache_is_filled_when_built_not_by_check_options(tmp_path, monkeypatch):
    root = make_odd_city100(tmp_path / 'city')
    opt = dict(type='City100Dataset', name='c', phase='train', dataroot=str(root), gt_size=16, cache=True, scale=1)

    def no_decoding(path):
        raise AssertionError(f'decoded {path}')

    with monkeypatch.context() as patch:
        patch.setattr(paired_base, 'read_raw', no_decoding)
        DATASET_REGISTRY.get('City100Dataset').check_options(opt)
    ds = DATASET_REGISTRY.get('City100Dataset')(opt)
    assert sorted(ds.cache) == sorted(ds.files()) and len(ds.cache) == 8
    assert {img.dtype for img in ds.cache.values()} == {np.dtype(np.uint8), np.dtype(np.uint16)}
    assert ds.cache[ds.pairs[1][0]].shape == (51, 45, 1) and ds.cache[ds.pairs[1][1]].shape == (51, 45, 3)


def test_dataloader_workers_read_the_cache_only(tmp_path, monkeypatch):
    root = make_odd_city100(tmp_path / 'city')
    ds = build('City100Dataset', 'train', dataroot=str(root), gt_size=16, cache=True, scale=1)

    def no_decoding(path):
        raise AssertionError(f'a worker decoded {path}')

    monkeypatch.setattr(paired_base, 'read_raw', no_decoding)  # the forked workers inherit it
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2,
                                         multiprocessing_context='fork')
    batches = list(loader)
    assert len(batches) == 2 and batches[0]['gt'].shape == (2, 3, 16, 16)


def test_cache_bound_from_png_headers_is_one_line_error(tmp_path, monkeypatch):
    root = make_odd_city100(tmp_path / 'city')
    opt = dict(type='City100Dataset', name='City100_train', phase='val', dataroot=str(root), cache=True,
               cache_max_gb=1e-5)
    monkeypatch.setattr(paired_base, 'read_raw', lambda path: pytest.fail('decoded before checking the headers'))
    needed = 51 * 45 * ((3 + 3) + (1 + 3) + (6 + 6) + (2 + 2))  # bytes a pixel: BGR, gray + RGBA, 16-bit ones
    for make in (DATASET_REGISTRY.get('City100Dataset').check_options, DATASET_REGISTRY.get('City100Dataset')):
        with pytest.raises(DatasetError) as err:
            make(opt)
        assert str(err.value) == (
            f"City100Dataset 'City100_train': cache needs {needed / 1e9:.3g} GB for 8 decoded images, more than "
            'cache_max_gb 1e-05; raise cache_max_gb, set cache: false, or cut the set into an LMDB with '
            'basicsr prepare')


def test_cache_bound_of_files_without_header_is_checked_while_decoding(tmp_path):
    for i in (1, 2):
        img = structured(40, 40, 90, seed=i)
        cv2.imwrite(str(tmp_path / f'00{i}H.bmp'), img)
        cv2.imwrite(str(tmp_path / f'00{i}L.bmp'), img)
    opt = dict(dataroot=str(tmp_path), cache=True, cache_max_gb=2.5 * 40 * 40 * 3 / 1e9)
    DATASET_REGISTRY.get('City100Dataset').check_options(dict(opt, type='City100Dataset', name='c', phase='val'))
    with pytest.raises(DatasetError, match=r"'City100Dataset_val': cache needs more than 1\.44e-05 GB for 4 decoded"):
        build('City100Dataset', 'val', **opt)


@pytest.mark.parametrize('value', [0, -1, 'lots', True])
def test_cache_max_gb_must_be_a_positive_number(tmp_path, value):
    root = make_odd_city100(tmp_path / 'city')
    with pytest.raises(DatasetError, match="City100Dataset 'City100Dataset_val': cache_max_gb must be a positive"):
        build('City100Dataset', 'val', dataroot=str(root), cache=True, cache_max_gb=value)


def test_real_city100_cached_train_items_equal_uncached(shared_data):
    root = shared_data / 'City100_NikonD5500'
    if not root.is_dir():
        pytest.skip(f'{root} is absent')
    opt = dict(dataroot=str(root), id_range=[1, 2], color='y', gt_size=96, scale=1)
    plain, cached = build('City100Dataset', 'train', **opt), build('City100Dataset', 'train', cache=True, **opt)
    assert_items_equal(cached, lambda i: plain[i], rounds=2)


# --------------------------------------------------------------------------------- LMDB sub-images


def prepare(tmp_path, section, output, *flags):
    opt = dict(name='prep', model_type='DMLModel', scale=section.pop('scale', 1), datasets=dict(train=section))
    return run_cli(['prepare', '-opt', str(write_yaml(tmp_path / 'prep.yml', opt)), '--output', str(output),
                    '--no-progress', *flags], cwd=tmp_path)


def city100_section(root, **options):
    section = dict(type='City100Dataset', name='City100_train', dataroot=str(root), color='y', gt_size=16,
                   io_backend={'type': 'disk'})
    section.update(options)
    return section


@pytest.mark.parametrize('phase', ['train', 'val'])
def test_lmdb_of_whole_images_gives_the_disk_items(tmp_path, phase):
    root = make_odd_city100(tmp_path / 'city', size=(50, 44))
    common = dict(color='y', gt_size=16, lr_downscale=2, scale=2, use_hflip=True)
    proc = prepare(tmp_path, city100_section(root, **common), tmp_path / 'city_sub', '--crop-size', '64')
    assert proc.returncode == 0, proc.stderr
    assert '4 sub-image pairs of 4 pairs' in proc.stdout
    disk = build('City100Dataset', phase, dataroot=str(root), **common)
    lmdb = build('City100Dataset', phase, dataroot=str(tmp_path / 'city_sub'), io_backend={'type': 'lmdb'}, **common)
    assert [os.path.basename(p) for p, _ in lmdb.pairs] == ['001H_s001', '002H_s001', '003H_s001', '004H_s001']
    assert_items_equal(lmdb, lambda i: disk[i])


def test_lmdb_subimages_tile_the_aligned_pairs(tmp_path):
    make_realsr(tmp_path / 'realsr', ids=(1,), cameras=('Canon',), size=(100, 76))
    section = dict(type='RealSRDataset', name='R', dataroot=str(tmp_path / 'realsr'), cameras=['Canon'],
                   gt_size=16, scale=4)
    proc = prepare(tmp_path, dict(section), tmp_path / 'sub', '--crop-size', '32', '--step', '24',
                   '--thresh-size', '4')
    assert proc.returncode == 0, proc.stderr
    lmdb = build('RealSRDataset', 'val', dataroot=str(tmp_path / 'sub'), io_backend={'type': 'lmdb'})
    boxes = subimage_boxes(100, 76, 32, 24, 4)  # rows 0 24 48 68, columns 0 24 44
    assert [(y, x) for y, x, _, _ in boxes] == [(y, x) for y in (0, 24, 48, 68) for x in (0, 24, 44)]
    whole = build('RealSRDataset', 'val', dataroot=str(tmp_path / 'realsr'), split='Train', cameras=['Canon'])[0]
    assert len(lmdb) == len(boxes)
    for (y, x, h, w), item in zip(boxes, lmdb):
        assert torch.equal(item['gt'], whole['gt'][:, y:y + h, x:x + w])
        assert torch.equal(item['lq'], whole['lq'][:, y // 4:(y + h) // 4, x // 4:(x + w) // 4])
    assert os.path.basename(lmdb.pairs[-1][1]) == 'Canon_001_HR_s012'
    meta = (tmp_path / 'sub' / 'LR.lmdb' / 'meta_info.txt').read_text().splitlines()
    assert meta[0] == 'Canon_001_HR_s001.png (8,8,3) 1' and len(meta) == 12


def test_lmdb_errors_name_the_folder(tmp_path):
    root = make_odd_city100(tmp_path / 'city')
    with pytest.raises(DatasetError) as err:
        build('City100Dataset', 'val', dataroot=str(root), io_backend={'type': 'lmdb'})
    assert str(err.value) == (f"City100Dataset 'City100Dataset_val': io_backend lmdb reads a folder made by basicsr "
                              f'prepare (holding HR.lmdb, LR.lmdb and prepared.yml), but {root} has no HR.lmdb, '
                              'LR.lmdb, prepared.yml')
    assert prepare(tmp_path, city100_section(root), tmp_path / 'sub', '--crop-size', '32').returncode == 0
    with pytest.raises(DatasetError, match=r'prepared for City100Dataset x1 \(LR stored at 1/1 of the HR size\), '
                       r'but these options read it as City100Dataset x2 \(LR stored at 1/1'):
        build('City100Dataset', 'val', dataroot=str(tmp_path / 'sub'), io_backend={'type': 'lmdb'}, lr_downscale=2,
              scale=2)
    with pytest.raises(DatasetError, match='prepared for City100Dataset x1 .* as RealSRDataset x1'):
        build('RealSRDataset', 'val', dataroot=str(tmp_path / 'sub'), io_backend={'type': 'lmdb'}, scale=1,
              lr_grid='hr')
    with pytest.raises(DatasetError, match='cache works with io_backend'):
        build('City100Dataset', 'val', dataroot=str(tmp_path / 'sub'), io_backend={'type': 'lmdb'}, cache=True)


def test_an_lmdb_meta_info_over_its_bound_is_one_line(tmp_path, monkeypatch):
    from dml_basicsr.data import prepared_lmdb

    root = make_odd_city100(tmp_path / 'city', size=(50, 44))
    assert prepare(tmp_path, city100_section(root), tmp_path / 'sub', '--crop-size', '64').returncode == 0
    meta = tmp_path / 'sub' / 'HR.lmdb' / 'meta_info.txt'
    size = meta.stat().st_size
    monkeypatch.setattr(prepared_lmdb, 'MAX_META_INFO_BYTES', size - 1)
    with pytest.raises(DatasetError, match=f'HR.lmdb/meta_info.txt: {size} bytes, more than the {size - 1} bytes '
                                           'meta_info files may have'):
        build('City100Dataset', 'val', dataroot=str(tmp_path / 'sub'), io_backend={'type': 'lmdb'})
    monkeypatch.setattr(prepared_lmdb, 'MAX_META_INFO_BYTES', size)
    assert len(build('City100Dataset', 'val', dataroot=str(tmp_path / 'sub'), io_backend={'type': 'lmdb'})) == 4


@pytest.mark.parametrize('keep', ['half', 'header'])
def test_a_truncated_lmdb_is_refused_before_a_page_is_mapped(tmp_path, keep):
    """Reading a page past the end of a truncated data.mdb is a SIGBUS (the process dies without a word)."""
    root = make_odd_city100(tmp_path / 'city', size=(64, 64))
    assert prepare(tmp_path, city100_section(root), tmp_path / 'sub', '--crop-size', '64').returncode == 0
    data = tmp_path / 'sub' / 'LR.lmdb' / 'data.mdb'
    size = data.stat().st_size
    os.truncate(data, size // 2 if keep == 'half' else 8192)  # 8192: the two meta pages
    with pytest.raises(DatasetError, match=rf'LR\.lmdb/data\.mdb: truncated \(\d+ bytes, its header declares '
                                           rf'{size}\): copy or prepare it again'):
        build('City100Dataset', 'val', dataroot=str(tmp_path / 'sub'), io_backend={'type': 'lmdb'})


def test_prepare_is_atomic_and_refuses_an_existing_output(tmp_path, monkeypatch):
    root = make_odd_city100(tmp_path / 'city')
    from dml_basicsr.data import prepared_lmdb
    calls = []

    def fail_on_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError('killed')
        return real_put(*args)

    real_put = prepared_lmdb.put_subimages
    monkeypatch.setattr(prepared_lmdb, 'put_subimages', fail_on_second)
    with pytest.raises(RuntimeError, match='killed'):
        prepare(tmp_path, city100_section(root), tmp_path / 'sub', '--crop-size', '32')
    assert sorted(os.listdir(tmp_path)) == ['city', 'prep.yml']  # no output, no temporary folder
    monkeypatch.undo()
    (tmp_path / '.partial-sub.999999999.tmp').mkdir()  # a killed run's leftover
    assert prepare(tmp_path, city100_section(root), tmp_path / 'sub', '--crop-size', '32').returncode == 0
    assert sorted(os.listdir(tmp_path)) == ['city', 'prep.yml', 'sub']
    assert sorted(os.listdir(tmp_path / 'sub')) == ['HR.lmdb', 'LR.lmdb', 'prepared.yml']
    proc = prepare(tmp_path, city100_section(root), tmp_path / 'sub')
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f'basicsr prepare: error: {tmp_path / "sub"} exists; remove it or choose another output folder')


def test_prepare_never_writes_into_its_input_or_through_a_link(tmp_path):
    root = make_odd_city100(tmp_path / 'city')
    before = sorted(p.name for p in root.rglob('*'))
    proc = prepare(tmp_path, city100_section(root), root / 'sub', '--crop-size', '32')
    assert proc.returncode == 2 and 'lies inside the input' in one_error_line(proc, 'prepare')
    assert sorted(p.name for p in root.rglob('*')) == before
    (tmp_path / 'victim').mkdir()
    (tmp_path / 'victim' / 'keep.png').write_bytes(b'keep')
    (tmp_path / '.partial-sub.999999999.tmp').symlink_to(tmp_path / 'victim')  # a stale name that is a link
    (tmp_path / 'sub').symlink_to(tmp_path / 'victim' / 'sub')  # a dangling link at the output's name
    proc = prepare(tmp_path, city100_section(root), tmp_path / 'sub', '--crop-size', '32')
    assert proc.returncode == 2 and 'sub is a symbolic link' in one_error_line(proc, 'prepare')
    os.remove(tmp_path / 'sub')
    assert prepare(tmp_path, city100_section(root), tmp_path / 'sub', '--crop-size', '32').returncode == 0
    assert os.listdir(tmp_path / 'victim') == ['keep.png'] and os.path.islink(tmp_path / '.partial-sub.999999999.tmp')


@pytest.mark.parametrize('flags,message', [
    (['--crop-size', '30'], 'crop_size must be a positive multiple of the HR/LR ratio 4, got 30'),
    (['--step', '6'], 'step must be a positive multiple of the HR/LR ratio 4, got 6'),
    (['--crop-size', '8'], '--crop-size 8 is smaller than the training patch gt_size 16'),
])
def test_prepare_argument_errors(tmp_path, flags, message):
    make_realsr(tmp_path / 'realsr', ids=(1,))
    section = dict(type='RealSRDataset', name='R', dataroot=str(tmp_path / 'realsr'), gt_size=16, scale=4)
    proc = prepare(tmp_path, section, tmp_path / 'sub', *flags)
    assert proc.returncode == 2 and proc.stderr.strip() == f'basicsr prepare: error: {message}'
    assert not (tmp_path / 'sub').exists()


def test_a_corrupted_lmdb_is_one_line(tmp_path):
    opt = realsr_train_options(tmp_path)
    prep = run_cli(['prepare', '-opt', str(write_yaml(tmp_path / 'prep.yml', opt)), '--output', 'lmdb',
                    '--crop-size', '16', '--step', '16', '--no-progress'], cwd=tmp_path)
    assert prep.returncode == 0, prep.stderr[-2000:]
    data = tmp_path / 'lmdb' / 'HR.lmdb' / 'data.mdb'
    data.write_bytes(b'\x00' * 64)
    opt['datasets']['train'] = dict(opt['datasets']['train'], dataroot=str(tmp_path / 'lmdb'),
                                    io_backend={'type': 'lmdb'})
    opt['train']['total_iter'] = 2
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'opt.yml', opt))], cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert lines[-1].startswith('basicsr train: error: ') and 'LMDB' in lines[-1] and 'prepare it again' in lines[-1]
