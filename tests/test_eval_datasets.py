"""SRRGBDataset, DRealSRDataset and LRFolderDataset on tiny fake layouts, plus RealSRSet and odd inputs when present."""
import logging
from pathlib import Path

import cv2
import pytest
import torch
from basicsr.utils.registry import DATASET_REGISTRY

import dml_basicsr  # noqa: F401  (registers the datasets)
from conftest import flat, make_srrgb
from dml_basicsr.data import DRealSRDataset, LRFolderDataset, SRRGBDataset
from dml_basicsr.data.errors import DatasetError, DatasetNotFoundError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / 'shared' / 'data'
QUANT = 1 / 255 + 1e-4  # one 8-bit step


@pytest.fixture
def real_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f'real data folder {SHARED_DATA} is absent')
    return SHARED_DATA


def build(type_, phase='val', **opt):
    """The dataset as BasicSR builds it: phase, scale, name and io_backend set."""
    opt = dict(type=type_, name=f'{type_}_{phase}', phase=phase, **opt)
    opt.setdefault('io_backend', {'type': 'disk'})
    opt.setdefault('scale', 4)
    return DATASET_REGISTRY.get(type_)(opt)


def mean_level(t):
    """Mean of the R channel (BGR level + 2 after the BGR->RGB swap) in 0..255."""
    return float(t[0].mean()) * 255


# ---------------------------------------------------------------------------------------------- SR-RGB


def test_srrgb_defaults_pair_short_focal_lr_with_long_focal_reference(tmp_path):
    make_srrgb(tmp_path / 'test')
    ds = build('SRRGBDataset', dataroot=str(tmp_path / 'test'))
    assert len(ds) == 3
    item = ds[2]
    assert item['lq_path'] == str(tmp_path / 'test' / '00007' / '00006.JPG')
    assert item['gt_path'] == str(tmp_path / 'test' / '00007' / '00002.JPG')
    assert item['aligned'] is False and item['image_name'] == '00007_00006'
    assert item['lq'].shape == item['gt'].shape == (3, 40, 60)
    assert item['lq'].dtype == torch.float32
    assert abs(mean_level(item['lq']) - (60 + 7 + 2)) < 1.5
    assert abs(mean_level(item['gt']) - (20 + 7 + 2)) < 1.5


def test_srrgb_shots_sequences_max_size_and_y(tmp_path):
    make_srrgb(tmp_path, sequences=(1, 2, 3, 10), size=(50, 70))
    ds = build('SRRGBDataset', dataroot=str(tmp_path), lq_shot=5, gt_shot=1, sequences=['00010', 2], max_size=8,
               scale=4, color='y')
    assert [p[0] for p in ds.pairs] == [str(tmp_path / '00002' / '00005.JPG'), str(tmp_path / '00010' / '00005.JPG')]
    assert [p[1] for p in ds.pairs] == [str(tmp_path / '00002' / '00001.JPG'), str(tmp_path / '00010' / '00001.JPG')]
    item = ds[0]
    assert item['lq'].shape == (1, 8, 8)
    assert item['gt'].shape == (1, 32, 32)  # scale x the LR crop
    ds = build('SRRGBDataset', dataroot=str(tmp_path), sequence_range=[2, 3], max_size=100)
    assert [p[0].split('/')[-2] for p in ds.pairs] == ['00002', '00003']
    assert ds[0]['lq'].shape == (3, 50, 70)  # max_size larger than the image: no crop


def test_srrgb_missing_shot_names_the_file(tmp_path):
    make_srrgb(tmp_path, sequences=(1, 2), shots=range(1, 7))  # 6 shots: no 00007.JPG
    with pytest.raises(DatasetNotFoundError, match=r'00002/00007\.JPG'):
        build('SRRGBDataset', dataroot=str(tmp_path), lq_shot=7, gt_shot=3)
    (tmp_path / '00002' / '00006.JPG').unlink()
    with pytest.raises(DatasetNotFoundError) as err:
        build('SRRGBDataset', dataroot=str(tmp_path))
    assert str(tmp_path / '00002' / '00006.JPG') in str(err.value)
    assert '00001/' not in str(err.value)
    ds = build('SRRGBDataset', dataroot=str(tmp_path), skip_incomplete=True)
    assert [p[0] for p in ds.pairs] == [str(tmp_path / '00001' / '00006.JPG')]


def test_srrgb_option_errors(tmp_path):
    make_srrgb(tmp_path, sequences=(1, 2))
    with pytest.raises(DatasetError, match='lq_shot .1. must be larger than gt_shot .5.'):
        build('SRRGBDataset', dataroot=str(tmp_path), lq_shot=1, gt_shot=5)
    with pytest.raises(DatasetError, match='gt_shot'):
        build('SRRGBDataset', dataroot=str(tmp_path), gt_shot=0)
    with pytest.raises(DatasetNotFoundError, match='00009'):
        build('SRRGBDataset', dataroot=str(tmp_path), sequences=[1, 9])
    with pytest.raises(DatasetError, match='sequences is an empty list'):
        build('SRRGBDataset', dataroot=str(tmp_path), sequences=[])
    with pytest.raises(DatasetError, match='sequence_range'):
        build('SRRGBDataset', dataroot=str(tmp_path), sequence_range=[5, 2])
    with pytest.raises(DatasetError, match='not aligned'):
        build('SRRGBDataset', phase='train', dataroot=str(tmp_path), gt_size=32)
    with pytest.raises(DatasetError, match='max_size'):
        build('SRRGBDataset', dataroot=str(tmp_path), max_size=0)
    with pytest.raises(DatasetNotFoundError, match='nowhere'):
        SRRGBDataset.check_options(dict(name='x', phase='val', dataroot=str(tmp_path / 'nowhere')))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetError, match='no sequence folders'):
        build('SRRGBDataset', dataroot=str(tmp_path / 'empty'))
    cv2.imwrite(str(tmp_path / '00001' / '00002.png'), flat(4, 4, 9))
    with pytest.raises(DatasetError, match='00002.JPG and 00002.png'):
        build('SRRGBDataset', dataroot=str(tmp_path))


# ---------------------------------------------------------------------------------------------- DRealSR


def make_drealsr(root, names=('DSC_1454', 'P1180183', 'IMG_0007'), scale=4, size=(32, 48), split='test'):
    """Write a DRealSR layout with flat images of distinct levels; return {name: level}.

    Each LR folder sorts in a different order from the HR folder once the suffixes are added, and the
    HR folder holds a decoy of another scale, so that pairing by position (instead of by name) gives the wrong LR.
    """
    (root / f'{split}_HR').mkdir(parents=True)
    (root / f'{split}_LR').mkdir(parents=True)
    levels = {}
    h, w = size
    for i, name in enumerate(names):
        levels[name] = 30 + 40 * i
        cv2.imwrite(str(root / f'{split}_HR' / f'{name}_x{scale}.png'), flat(h, w, levels[name]))
        cv2.imwrite(str(root / f'{split}_LR' / f'{name}_x1.png'), flat(h // scale, w // scale, levels[name] + 5))
    decoy_scale = 3 if scale == 2 else 2
    cv2.imwrite(str(root / f'{split}_HR' / f'AAA_0001_x{decoy_scale}.png'), flat(h, w, 250))
    return levels


def test_drealsr_pairs_by_parsed_name(tmp_path):
    levels = make_drealsr(tmp_path)
    ds = build('DRealSRDataset', dataroot=str(tmp_path))
    assert len(ds) == 3
    for item in (ds[i] for i in range(len(ds))):
        name = Path(item['gt_path']).name.rsplit('_x', 1)[0]
        assert Path(item['lq_path']) == tmp_path / 'test_LR' / f'{name}_x1.png'
        assert item['gt'].shape == (3, 32, 48) and item['lq'].shape == (3, 8, 12)
        assert abs(mean_level(item['gt']) - (levels[name] + 2)) < QUANT * 255
        assert abs(mean_level(item['lq']) - (levels[name] + 7)) < QUANT * 255


def test_drealsr_scale_follows_option_and_odd_sizes_are_cropped(tmp_path):
    make_drealsr(tmp_path, names=('DSC_0001', ), scale=2, size=(33, 47))
    ds = build('DRealSRDataset', dataroot=str(tmp_path), scale=2)
    assert len(ds) == 1  # the _x3 decoy is ignored
    item = ds[0]
    assert item['gt'].shape == (3, 32, 46) and item['lq'].shape == (3, 16, 23)


def test_drealsr_train_crops_and_y(tmp_path):
    make_drealsr(tmp_path, split='train', size=(64, 64))
    ds = build('DRealSRDataset', phase='train', split='train', dataroot=str(tmp_path), gt_size=32, color='y')
    item = ds[0]
    assert item['gt'].shape == (1, 32, 32) and item['lq'].shape == (1, 8, 8)
    with pytest.raises(DatasetError, match='gt_size'):
        build('DRealSRDataset', phase='train', split='train', dataroot=str(tmp_path))


def test_drealsr_errors_name_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match='test_HR'):
        DRealSRDataset.check_options(dict(name='x', phase='val', scale=4, dataroot=str(tmp_path)))
    make_drealsr(tmp_path)
    (tmp_path / 'test_LR' / 'P1180183_x1.png').unlink()
    with pytest.raises(DatasetError, match='P1180183_x4.png'):
        build('DRealSRDataset', dataroot=str(tmp_path))
    cv2.imwrite(str(tmp_path / 'test_LR' / 'P1180183_x1.png'), flat(9, 12, 1))
    ds = build('DRealSRDataset', dataroot=str(tmp_path))
    index = [p[1] for p in ds.pairs].index(str(tmp_path / 'test_LR' / 'P1180183_x1.png'))
    with pytest.raises(DatasetError, match=r'P1180183_x1.png is 9x12, expected 8x12'):
        ds[index]
    with pytest.raises(DatasetError, match='lmdb'):
        build('DRealSRDataset', dataroot=str(tmp_path), io_backend={'type': 'lmdb'})
    with pytest.raises(DatasetError, match=r'no HR files named <image>_x3.png in .*test_HR \(it has _x2, _x4 files'):
        build('DRealSRDataset', dataroot=str(tmp_path), scale=3)


# ---------------------------------------------------------------------------------------------- LR folder


def test_lr_folder_lists_images_and_crops(tmp_path):
    cv2.imwrite(str(tmp_path / 'b.png'), flat(20, 30, 50))
    cv2.imwrite(str(tmp_path / 'a.jpg'), flat(10, 10, 80))
    (tmp_path / 'notes.txt').write_text('not an image')
    ds = build('LRFolderDataset', dataroot_lq=str(tmp_path), max_size=16)
    assert [Path(p).name for p in ds.paths] == ['a.jpg', 'b.png']
    item = ds[1]
    assert set(item) == {'lq', 'lq_path'}
    assert item['lq'].shape == (3, 16, 16)
    assert abs(mean_level(item['lq']) - 52) < QUANT * 255
    assert ds[0]['lq'].shape == (3, 10, 10)
    assert build('LRFolderDataset', dataroot_lq=str(tmp_path), color='y')[1]['lq'].shape == (1, 20, 30)


class BasicSRLog(logging.Handler):
    """The messages of BasicSR's logger ('basicsr') at INFO and above while installed."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __enter__(self):
        self.logger = logging.getLogger('basicsr')
        self.level = self.logger.level
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level)


def test_lr_folder_max_size_crops_are_logged_and_whole_images_pass_without_it(tmp_path):
    """options/test_srx4_manifest_lr_photos.yml's max_size: the crop is said in BasicSR's log (how many photos, from
    their headers; a format without a size in its header, when read), with the command that takes them whole."""
    cv2.imwrite(str(tmp_path / 'a_big.png'), flat(20, 30, 50))
    cv2.imwrite(str(tmp_path / 'b_small.jpg'), flat(10, 12, 80))
    cv2.imwrite(str(tmp_path / 'c_wide.png'), flat(8, 40, 20))
    # An uncompressed TIFF of OpenCV's keeps its directory (with the size) after the pixels, past the header bytes read.
    cv2.imwrite(str(tmp_path / 'd_big.tif'), flat(200, 120, 60), [cv2.IMWRITE_TIFF_COMPRESSION, 1])
    with BasicSRLog() as log:
        ds = build('LRFolderDataset', dataroot_lq=str(tmp_path), max_size=16)
    assert log.messages == [
        "LRFolderDataset 'LRFolderDataset_val': max_size 16: 2 of 4 photos centre-cropped to at most 16x16 (and any "
        'of 1 more whose header gives no size: each logged when read); the outputs show these crops; basicsr upscale '
        '-i FOLDER -o OUT --model LABEL processes whole photos']
    with BasicSRLog() as log:
        shapes = [tuple(ds[i]['lq'].shape) for i in range(len(ds))]
    assert shapes == [(3, 16, 16), (3, 10, 12), (3, 8, 16), (3, 16, 16)]
    assert log.messages == [
        "LRFolderDataset 'LRFolderDataset_val': max_size 16: d_big.tif (120x200) centre-cropped to at most 16x16; the "
        'outputs show these crops; basicsr upscale -i FOLDER -o OUT --model LABEL processes whole photos']
    with BasicSRLog() as log:
        whole = build('LRFolderDataset', dataroot_lq=str(tmp_path))
        shapes = [tuple(whole[i]['lq'].shape) for i in range(len(whole))]
    assert shapes == [(3, 20, 30), (3, 10, 12), (3, 8, 40), (3, 200, 120)] and log.messages == []


def test_lr_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match='dataroot_lq'):
        build('LRFolderDataset')
    with pytest.raises(DatasetNotFoundError, match='missing_folder'):
        LRFolderDataset.check_options(dict(name='x', phase='val', dataroot_lq=str(tmp_path / 'missing_folder')))
    with pytest.raises(DatasetError, match='no image files'):
        build('LRFolderDataset', dataroot_lq=str(tmp_path))
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(DatasetError, match='color'):
        build('LRFolderDataset', dataroot_lq=str(tmp_path), color='lab')
    with pytest.raises(DatasetError, match='broken.png'):
        build('LRFolderDataset', dataroot_lq=str(tmp_path))[0]


def test_real_lr_folder_realsrset(real_data):
    root = real_data / 'RealSRSet_LR'
    if not root.is_dir():
        pytest.skip(f'{root} is absent')
    ds = build('LRFolderDataset', dataroot_lq=str(root), max_size=128)
    assert len(ds) == 25
    for i in (0, len(ds) - 1):
        lq = ds[i]['lq']
        assert lq.shape[0] == 3 and max(lq.shape[1:]) <= 128 and 0 <= lq.min() and lq.max() <= 1
    loader = torch.utils.data.DataLoader(ds, batch_size=1)
    batch = next(iter(loader))
    assert batch['lq'].shape == (1, 3, 128, 128) and batch['lq_path'][0].endswith('00003.png')


def test_real_odd_inputs(real_data):
    root = real_data / 'odd_inputs'
    if not root.is_dir():
        pytest.skip(f'{root} is absent')
    ds = build('LRFolderDataset', dataroot_lq=str(root), color='y')
    assert len(ds) == 4
    for i in range(len(ds)):
        lq = ds[i]['lq']
        assert lq.shape[0] == 1 and lq.dtype == torch.float32 and 0 <= lq.min() and lq.max() <= 1, ds.paths[i]
    rgb = build('LRFolderDataset', dataroot_lq=str(root))
    gray = rgb[[Path(p).name for p in rgb.paths].index('wolf_gray.jpg')]['lq']
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
