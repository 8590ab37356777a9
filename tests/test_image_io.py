"""dml_basicsr.data.image_io: one decoder for every image, and one error naming the file for a hostile one (empty,
truncated, a decompression bomb, not an image), also through ``basicsr train`` and ``basicsr prepare``; the size that
PNG, JPEG, BMP, TIFF and WebP headers declare, read before anything is decoded."""
import re
import struct

import cv2
import numpy as np
import pytest
from basicsr.utils.registry import DATASET_REGISTRY

from conftest import HOSTILE_IMAGES, expect_option_error, make_realsr, realsr_train_options, run_cli, write_yaml
from dml_basicsr.data import image_io
from dml_basicsr.data.errors import DatasetError


@pytest.mark.parametrize('name', HOSTILE_IMAGES)
def test_decoding_a_hostile_image_is_one_dataset_error(tmp_path, name):
    from dml_basicsr.data.errors import DatasetError
    from dml_basicsr.data.image_io import read_raw

    data, fragment = HOSTILE_IMAGES[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=re.escape(f'{path}: ') + '.*' + re.escape(fragment)):
        read_raw(str(path))


@pytest.mark.parametrize('name', ['empty.png', 'bomb.png', 'text.jpg'])
@pytest.mark.parametrize('command', ['train', 'prepare'])
def test_train_and_prepare_refuse_a_hostile_image_with_one_line(tmp_path, command, name):
    data, fragment = HOSTILE_IMAGES[name]
    opt = realsr_train_options(tmp_path, batch_size_per_gpu=2)
    opt['train']['total_iter'] = 2
    hr = next((tmp_path / 'RealSR').rglob('Canon_001_HR.png'))
    hr.write_bytes(data)
    opt_file = write_yaml(tmp_path / 'opt.yml', opt)
    args = ['-opt', str(opt_file)] + (['--output', 'lmdb', '--no-progress', '--crop-size', '16', '--step', '8']
                                      if command == 'prepare' else [])
    proc = run_cli([command, *args], cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert lines[-1].startswith(f'basicsr {command}: error: ') and str(hr) in lines[-1], lines[-1]
    assert fragment in lines[-1] or 'cannot decode' in lines[-1]
    assert not (tmp_path / 'lmdb').exists()


# ------------------------------------------------------------------------------------ sizes declared by headers

H, W = 37, 53
PIXELS = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
WEBP_LOSSLESS = [cv2.IMWRITE_WEBP_QUALITY, 101]
OPENCV_FILES = {  # file name: (pixels, cv2.imwrite parameters, the header reader that gives the size)
    'colour.bmp': (PIXELS, [], image_io.bmp_size),
    'gray.bmp': (PIXELS[..., 0], [], image_io.bmp_size),
    'colour.tif': (PIXELS, [], image_io.tiff_size),
    'deep.tif': (PIXELS.astype(np.uint16) * 257, [], image_io.tiff_size),
    'gray.tif': (PIXELS[..., 0], [], image_io.tiff_size),
    'lossy.webp': (PIXELS, [cv2.IMWRITE_WEBP_QUALITY, 80], image_io.webp_size),  # a VP8 chunk
    'lossless.webp': (PIXELS, WEBP_LOSSLESS, image_io.webp_size),  # a VP8L chunk
    'alpha.webp': (np.dstack([PIXELS, PIXELS[..., :1]]), [cv2.IMWRITE_WEBP_QUALITY, 80], image_io.webp_size),  # VP8X
}


@pytest.mark.parametrize('name', OPENCV_FILES)
def test_the_size_of_a_file_opencv_writes_is_read_from_its_header(tmp_path, name):
    """Each header reader gives (height, width) of OpenCV's files; such a file, without an end marker, decodes."""
    pixels, params, reader = OPENCV_FILES[name]
    path = tmp_path / name
    assert cv2.imwrite(str(path), pixels, params)
    assert reader(path.read_bytes()[:image_io.HEADER_BYTES]) == (H, W)
    assert image_io.check_image_file(str(path)) == (H, W)
    assert image_io.read_raw(str(path)).shape[:2] == (H, W)


def bmp_declaring(width, height, header_size=40):
    """A BMP file header and DIB header (BITMAPINFOHEADER, or BITMAPCOREHEADER for ``header_size`` 12) declaring
    ``width`` x ``height`` 24-bit pixels, with no pixels after it."""
    start = 14 + header_size
    if header_size == 12:
        dib = struct.pack('<IHHHH', 12, width, height, 1, 24)
    else:
        dib = struct.pack('<IiiHH', header_size, width, height, 1, 24) + bytes(header_size - 16)
    return b'BM' + struct.pack('<IHHI', start, 0, 0, start) + dib


def tiff_declaring(width, height, order='>'):
    """A TIFF header and first IFD (ImageWidth as SHORT, ImageLength as LONG) in byte order ``order``."""
    magic = b'MM\x00*' if order == '>' else b'II*\x00'
    entries = struct.pack(order + 'HHIHH', 256, 3, 1, width, 0) + struct.pack(order + 'HHII', 257, 4, 1, height)
    return magic + struct.pack(order + 'IH', 8, 2) + entries + struct.pack(order + 'I', 0)


def webp_vp8x_declaring(width, height):
    """A WebP file of one VP8X chunk whose canvas is ``width`` x ``height``."""
    chunk = b'VP8X' + struct.pack('<I', 10) + bytes(4) + (width - 1).to_bytes(3, 'little') + \
        (height - 1).to_bytes(3, 'little')
    return b'RIFF' + struct.pack('<I', 4 + len(chunk)) + b'WEBP' + chunk


def test_crafted_headers_give_their_sizes():
    """The old BMP core header, a big-endian TIFF with SHORT and LONG tags, a top-down BMP (negative height)."""
    assert image_io.declared_size(bmp_declaring(W, H, header_size=12)) == (H, W)
    assert image_io.declared_size(bmp_declaring(W, -H)) == (H, W)
    assert image_io.declared_size(tiff_declaring(W, H)) == (H, W)
    assert image_io.declared_size(tiff_declaring(W, H, order='<')) == (H, W)
    assert image_io.declared_size(webp_vp8x_declaring(W, H)) == (H, W)


def test_a_tiff_whose_first_ifd_is_beyond_the_bytes_read_has_no_declared_size(tmp_path):
    """A TIFF that OpenCV writes has its IFD after the pixels: past HEADER_BYTES it is decoded as before."""
    noise = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    path = tmp_path / 'noise.tif'
    assert cv2.imwrite(str(path), noise)
    data = path.read_bytes()
    assert struct.unpack('<I', data[4:8])[0] > image_io.HEADER_BYTES
    assert image_io.tiff_size(data) == (200, 200) and image_io.tiff_size(data[:image_io.HEADER_BYTES]) is None
    assert image_io.check_image_file(str(path)) is None
    assert image_io.read_raw(str(path)).shape == (200, 200, 3)
    assert image_io.tiff_size(tiff_declaring(W, H)[:-12]) is None  # the ImageLength entry is cut off


BOMBS = {  # file name: (bytes, what the one error line says)
    'wide.bmp': (bmp_declaring(1 << 24, 64), 'declares a 16777216x64 image (1074 megapixels)'),
    'core.bmp': (bmp_declaring(65535, 65535, header_size=12), 'declares a 65535x65535 image'),
    'wide.tif': (tiff_declaring(65535, 1 << 20), 'declares a 65535x1048576 image'),
    'canvas.webp': (webp_vp8x_declaring(1 << 24, 1 << 24), 'declares a 16777216x16777216 image'),
}


@pytest.mark.parametrize('name', BOMBS)
def test_a_header_declaring_too_many_pixels_is_refused_before_decoding(tmp_path, monkeypatch, name):
    def no_decoding(*args):
        raise AssertionError('decoded an image whose header declares too many pixels')

    monkeypatch.setattr(image_io.cv2, 'imdecode', no_decoding)
    data, fragment = BOMBS[name]
    path = tmp_path / name
    path.write_bytes(data)
    for read in (image_io.check_image_file, image_io.read_raw):
        with pytest.raises(DatasetError, match=re.escape(f'{path}: its header {fragment}') + '.*are refused'):
            read(str(path))


def convert_images(root, ext, params=()):
    """Every PNG under ``root`` rewritten as an ``ext`` file of the same pixels (the PNG removed)."""
    for png in sorted(root.rglob('*.png')):
        assert cv2.imwrite(str(png.with_suffix(ext)), cv2.imread(str(png)), list(params))
        png.unlink()


@pytest.mark.parametrize('ext', ['.bmp', '.tif', '.webp'])
def test_an_lr_one_pixel_short_in_another_format_is_refused_by_the_option_check(tmp_path, ext):
    """tests/test_datasets.py's PNG check of every pair's sizes from the headers, for BMP, TIFF and WebP."""
    make_realsr(tmp_path)
    convert_images(tmp_path, ext, WEBP_LOSSLESS if ext == '.webp' else ())
    lr = sorted(tmp_path.rglob(f'Nikon_012_LR4{ext}'))[0]
    assert cv2.imwrite(str(lr), cv2.imread(str(lr))[:-1], WEBP_LOSSLESS if ext == '.webp' else [])
    opt = dict(type='RealSRDataset', name='r', phase='train', dataroot=str(tmp_path), split='Train', gt_size=16,
               scale=4)
    with pytest.raises(DatasetError, match=rf'Nikon_012_LR4\{ext} is 11x10, expected 12x10 for HR .*Nikon_012_HR'):
        DATASET_REGISTRY.get('RealSRDataset').check_options(opt)


def test_basicsr_train_refuses_a_bmp_lr_one_pixel_short_before_anything_is_written(tmp_path):
    opt = realsr_train_options(tmp_path)
    convert_images(tmp_path / 'RealSR', '.bmp')
    lr = sorted((tmp_path / 'RealSR').rglob('Nikon_012_LR2.bmp'))[0]
    assert cv2.imwrite(str(lr), cv2.imread(str(lr))[:-1])
    expect_option_error(tmp_path, opt, 'Nikon_012_LR2.bmp is 23x24, expected 24x24 for HR', 'Nikon_012_HR.bmp')


def test_a_gt_size_larger_than_a_bmp_hr_is_refused_before_anything_is_written(tmp_path):
    """tests/test_datasets.py's PNG check of gt_size against every HR image, for a BMP whose header gives the size."""
    opt = realsr_train_options(tmp_path, gt_size=64)
    convert_images(tmp_path / 'RealSR', '.bmp')
    expect_option_error(tmp_path, opt, 'gt_size 64 is larger than the HR image', '_HR.bmp')


# ------------------------------------------------- content whose size is not read is never decoded (hostile files)

BIG = 16400  # 16400 x 16400 = 2.69e8 pixels, above MAX_IMAGE_PIXELS = 2^28, below cv2's own bound of 2^30


def gif_declaring(width, height):
    """A GIF whose logical screen is ``width`` x ``height``, holding one 1x1 frame (cv2 allocates the screen)."""
    gif = b'GIF89a' + struct.pack('<HHBBB', width, height, 0x80, 0, 0) + b'\0\0\0\xff\xff\xff'
    return gif + b'\x2c' + struct.pack('<HHHHB', 0, 0, 1, 1, 0) + b'\x02\x02\x44\x01\x00' + b'\x3b'


def sun_raster_declaring(width, height, rows=4):
    """A run-length-encoded Sun raster file declaring ``width`` x ``height`` 8-bit pixels (only ``rows`` rows)."""
    row = b'\x80\xff\x00' * (width // 256) + b'\x80' + bytes([width % 256 - 1]) + b'\x00'
    return struct.pack('>8I', 0x59a66a95, width, height, 8, len(row) * height, 2, 0, 0) + row * rows


def jpeg_with_standalone_marker(width, height, marker=b'\xff\x01', size=16):
    """A real ``size`` x ``size`` JPEG whose SOF is rewritten to ``width`` x ``height``, with ``marker`` (a marker
    without a length: TEM or RSTn) right after its SOI."""
    ok, encoded = cv2.imencode('.jpg', np.full((size, size, 3), 128, np.uint8))
    data = bytearray(encoded.tobytes())
    sof = data.index(b'\xff\xc0')
    data[sof + 5:sof + 9] = height.to_bytes(2, 'big') + width.to_bytes(2, 'big')
    return bytes(data[:2] + marker + data[2:])


def bmp_rle8_declaring(width, height, header_size=100):
    """An RLE8 BMP with a ``header_size``-byte DIB header declaring ``width`` x ``height``, its pixels one
    end-of-bitmap code."""
    palette, rows = bytes(256 * 4), b'\x00\x01'
    start = 14 + header_size + len(palette)
    dib = struct.pack('<IiiHHIIiiII', header_size, width, height, 1, 8, 1, len(rows), 2835, 2835, 256, 0)
    return b'BM' + struct.pack('<IHHI', start + len(rows), 0, 0, start) + dib + bytes(header_size - 40) + palette + rows


def tiff_signed_declaring(width, height, kind=8, order='<', gap=0):
    """A TIFF whose ImageWidth and ImageLength are SSHORT (``kind`` 8) or SLONG (9) entries of an IFD that follows
    ``gap`` bytes of (pixel) data."""
    magic = b'MM\x00*' if order == '>' else b'II*\x00'
    value = 'hxx' if kind == 8 else 'i'
    entries = b''.join(struct.pack(order + 'HHI', tag, kind, 1) + struct.pack(order + value, number)
                       for tag, number in ((256, width), (257, height)))
    return magic + struct.pack(order + 'I', 8 + gap) + bytes(gap) + struct.pack(order + 'H', 2) + entries + bytes(4)


def jpeg_after_app_segments(width, height, segments):
    """A JPEG declaring ``width`` x ``height`` whose SOF follows ``segments`` APP1 segments of 65533 data bytes."""
    data = jpeg_with_standalone_marker(width, height, marker=b'')
    app = b'\xff\xe1' + struct.pack('>H', 0xFFFF) + bytes(0xFFFD)
    return data[:2] + app * segments + data[2:]


DECLARES_BIG = f'its header declares a {BIG}x{BIG} image (269 megapixels)'
NOT_AN_IMAGE = 'cannot decode image: not a PNG, JPEG, BMP, TIFF or WebP image (its content starts with '
REFUSED_BEFORE_DECODING = {  # file name: (bytes, what the one error line says)
    'screen.webp': (gif_declaring(BIG, BIG), NOT_AN_IMAGE + "b'GIF89a"),
    'sun.png': (sun_raster_declaring(BIG, BIG), NOT_AN_IMAGE + "b'Y\\xa6j\\x95"),
    'text.jpg': (b'not an image at all\n', NOT_AN_IMAGE + "b'not an image'"),
    'tem.jpg': (jpeg_with_standalone_marker(BIG, BIG), DECLARES_BIG),
    'rst.jpg': (jpeg_with_standalone_marker(BIG, BIG, marker=b'\xff\xd3\xff\xff\xff\xd7'), DECLARES_BIG),
    'rle.bmp': (bmp_rle8_declaring(BIG, BIG), DECLARES_BIG),
    'dib36.bmp': (bmp_declaring(BIG, -BIG, header_size=36), DECLARES_BIG),  # cv2 reads 32-bit sizes from 36 on
    'negative.bmp': (bmp_rle8_declaring(-BIG, BIG), f'declares a -{BIG}x{BIG} image (no pixels)'),
    'short_dib.bmp': (bmp_rle8_declaring(BIG, BIG)[:14] + struct.pack('<I', 8) + bytes(200),
                      'cannot decode image: its BMP header gives no image size'),
    'sshort.tif': (tiff_signed_declaring(BIG, BIG), DECLARES_BIG),
    'slong.tif': (tiff_signed_declaring(BIG, BIG, kind=9, order='>'), DECLARES_BIG),
    'negative.tif': (tiff_signed_declaring(BIG, -1), f'declares a {BIG}x-1 image (no pixels)'),
    'no_ifd.tif': (b'II*\x00' + struct.pack('<I', 1 << 20) + bytes(64),
                   'cannot decode image: its TIFF header gives no image size'),
    'no_sof.jpg': (b'\xff\xd8\xff\xe0\x00\x10' + bytes(14) + b'\xff\xd9',
                   'cannot decode image: its JPEG header gives no image size'),
}


def refuse_decoding(monkeypatch):
    """Make cv2.imdecode fail the test at once instead of allocating a hostile file's pixels."""
    def no_decoding(*args):
        raise AssertionError('cv2.imdecode was given a file whose size was not read and bounded')

    monkeypatch.setattr(image_io.cv2, 'imdecode', no_decoding)


@pytest.mark.parametrize('name', REFUSED_BEFORE_DECODING)
def test_content_whose_size_is_not_read_and_bounded_is_refused_before_decoding(tmp_path, monkeypatch, name):
    """Another format cv2 knows under an image name, a JPEG with markers without a length before its SOF, a BMP with
    a DIB header of another size, a TIFF with signed sizes: one line naming the file, cv2 never called."""
    refuse_decoding(monkeypatch)
    data, fragment = REFUSED_BEFORE_DECODING[name]
    assert len(data) < 8000
    path = tmp_path / name
    path.write_bytes(data)
    for read in (image_io.check_image_file, image_io.read_raw):
        with pytest.raises(DatasetError, match=re.escape(f'{path}: ') + '.*' + re.escape(fragment)) as caught:
            read(str(path))
        assert '\n' not in str(caught.value)
    with pytest.raises(DatasetError, match=re.escape(f'{name}: ') + '.*' + re.escape(fragment)):
        image_io.decode_image(data, name)


FAR_HEADERS = {  # file name: bytes whose size lies beyond HEADER_BYTES
    'far_ifd.tif': tiff_signed_declaring(BIG, BIG, gap=image_io.HEADER_BYTES),
    'late_sof.jpg': jpeg_after_app_segments(BIG, BIG, segments=2),
}


@pytest.mark.parametrize('name', FAR_HEADERS)
def test_a_size_beyond_the_first_bytes_is_read_from_the_whole_file_before_decoding(tmp_path, monkeypatch, name):
    """check_image_file reads HEADER_BYTES and finds no size there; the decode reads the whole file and refuses."""
    refuse_decoding(monkeypatch)
    path = tmp_path / name
    path.write_bytes(FAR_HEADERS[name])
    assert image_io.check_image_file(str(path)) is None
    with pytest.raises(DatasetError, match=re.escape(f'{path}: {DECLARES_BIG}')):
        image_io.read_raw(str(path))


@pytest.mark.parametrize('marker', [b'\xff\x01', b'\xff\xd0', b'\xff\xff\xff\x01\xff\xd7'])
def test_a_small_jpeg_with_markers_without_a_length_still_decodes(tmp_path, marker):
    data = jpeg_with_standalone_marker(16, 16, marker=marker)
    assert image_io.jpeg_size(data) == (16, 16)
    path = tmp_path / 'tem.jpg'
    path.write_bytes(data)
    assert image_io.check_image_file(str(path)) == (16, 16)
    img = image_io.read_raw(str(path))
    assert img.shape == (16, 16, 3) and abs(int(img.mean()) - 128) <= 2


def test_a_large_jpeg_segment_before_the_sof_is_skipped_by_the_decode(tmp_path):
    """A small JPEG whose SOF follows APP segments past HEADER_BYTES decodes: the whole file's header gives its size."""
    path = tmp_path / 'late.jpg'
    path.write_bytes(jpeg_after_app_segments(16, 16, segments=2))
    assert image_io.check_image_file(str(path)) is None
    assert image_io.read_raw(str(path)).shape == (16, 16, 3)
