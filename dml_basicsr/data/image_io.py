"""Image reading that handles the odd files real folders contain, with errors that name the file."""
import os
import struct

import cv2
import numpy as np
from basicsr.utils import bgr2ycbcr

from dml_basicsr.utils.bounded_read import open_regular_file, read_at_most
from .errors import DatasetError, DatasetNotFoundError

IMG_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def is_image_file(name):
    return name.lower().endswith(IMG_EXTENSIONS)


# The most pixels an image may declare in its header: 2^28 (e.g. 16384 x 16384), far above any camera photo, well
# below what one decode could not allocate. A header is read before any pixel is decoded.
MAX_IMAGE_PIXELS = 1 << 28
MAX_FILE_BYTES = 1 << 31  # 2 GiB: far above any encoded photograph of MAX_IMAGE_PIXELS
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame: the size is in them


PNG_HEADER_BYTES = 26  # the signature, the IHDR chunk's length and type, width, height, bit depth, colour type


def png_header(buffer):
    """(height, width, bit depth, colour type) from a PNG's IHDR chunk (the first :data:`PNG_HEADER_BYTES` of the
    file suffice), or None if ``buffer`` is no PNG."""
    if len(buffer) < PNG_HEADER_BYTES or buffer[:8] != PNG_SIGNATURE or buffer[12:16] != b'IHDR':
        return None
    width, height, depth, color_type = struct.unpack('>IIBB', buffer[16:26])
    return height, width, depth, color_type


def read_png_header(path):
    """:func:`png_header` of the file ``path`` (reads its first bytes only)."""
    with open_image_file(path) as f:
        return png_header(f.read(PNG_HEADER_BYTES))


def png_size(buffer):
    """(height, width) from a PNG's IHDR chunk, or None if ``buffer`` is no PNG."""
    header = png_header(buffer)
    return header[:2] if header else None


JPEG_STANDALONE_MARKERS = frozenset((0x01, *range(0xD0, 0xD8)))  # TEM and RST0-RST7: no length follows them


def jpeg_size(buffer):
    """(height, width) from a JPEG's first start-of-frame segment, or None if ``buffer`` is no JPEG (or has none).
    Fill bytes and the markers without a length (:data:`JPEG_STANDALONE_MARKERS`) before it are skipped, as the
    decoder does."""
    if buffer[:2] != b'\xff\xd8':
        return None
    i = 2
    while i + 9 <= len(buffer):
        if buffer[i] != 0xFF:
            return None
        marker = buffer[i + 1]
        if marker in JPEG_SOF_MARKERS:
            return int.from_bytes(buffer[i + 5:i + 7], 'big'), int.from_bytes(buffer[i + 7:i + 9], 'big')
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in JPEG_STANDALONE_MARKERS:
            i += 2
        else:
            i += 2 + int.from_bytes(buffer[i + 2:i + 4], 'big')
    return None


BMP_CORE_HEADER = 12  # BITMAPCOREHEADER (OS/2 1.x): 16-bit width and height; every longer DIB header: 32-bit ones


def bmp_size(buffer):
    """(height, width) from a BMP's DIB header (a negative height is a top-down image; a negative width is returned
    as it is: no pixels), or None if ``buffer`` is no BMP or its DIB header is shorter than the core header."""
    if len(buffer) < 26 or buffer[:2] != b'BM':
        return None
    header_size = int.from_bytes(buffer[14:18], 'little')
    if header_size < BMP_CORE_HEADER:
        return None
    if header_size == BMP_CORE_HEADER:
        width, height = struct.unpack('<HH', buffer[18:22])
    else:
        width, height = struct.unpack('<ii', buffer[18:26])
    return abs(height), width


VP8_START_CODE = b'\x9d\x01\x2a'
VP8L_SIGNATURE = 0x2F


def webp_size(buffer):
    """(height, width) from a WebP's first chunk: VP8 (lossy), VP8L (lossless) or VP8X (extended: the canvas), or
    None if ``buffer`` is no WebP."""
    if buffer[:4] != b'RIFF' or buffer[8:12] != b'WEBP':
        return None
    kind, data = buffer[12:16], buffer[20:30]
    if kind == b'VP8 ' and len(data) == 10 and data[3:6] == VP8_START_CODE:
        width, height = struct.unpack('<HH', data[6:10])
        return height & 0x3FFF, width & 0x3FFF
    if kind == b'VP8L' and len(data) >= 5 and data[0] == VP8L_SIGNATURE:
        bits = int.from_bytes(data[1:5], 'little')
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    if kind == b'VP8X' and len(data) == 10:
        return int.from_bytes(data[7:10], 'little') + 1, int.from_bytes(data[4:7], 'little') + 1
    return None


TIFF_BYTE_ORDERS = {b'II*\x00': '<', b'MM\x00*': '>'}
TIFF_IMAGE_WIDTH, TIFF_IMAGE_LENGTH = 256, 257
TIFF_VALUE_FORMATS = {1: 'B', 3: 'H', 4: 'I', 6: 'b', 8: 'h', 9: 'i'}  # (S)BYTE, (S)SHORT, (S)LONG: in the entry


def tiff_ifd_values(buffer, order, offset, tags):
    """{tag: value} of the single-valued integer entries of ``tags`` in the TIFF IFD at ``offset`` (byte order
    ``order``), as far as ``buffer`` holds it; a tag repeated keeps its first value, as libtiff does."""
    count = struct.unpack(order + 'H', buffer[offset:offset + 2])[0]
    values = {}
    for start in range(offset + 2, min(offset + 2 + 12 * count, len(buffer) - 11), 12):
        tag, kind, number = struct.unpack(order + 'HHI', buffer[start:start + 8])
        if tag in tags and kind in TIFF_VALUE_FORMATS and number == 1:
            values.setdefault(tag, struct.unpack_from(order + TIFF_VALUE_FORMATS[kind], buffer, start + 8)[0])
    return values


def tiff_size(buffer):
    """(height, width) from the ImageWidth and ImageLength tags of a TIFF's first IFD, or None if ``buffer`` is no
    TIFF, or its first IFD lies beyond ``buffer`` (a writer may put it after the pixels) or lacks them."""
    order = TIFF_BYTE_ORDERS.get(bytes(buffer[:4]))
    if order is None or len(buffer) < 8:
        return None
    offset = struct.unpack(order + 'I', buffer[4:8])[0]
    if offset + 2 > len(buffer):
        return None
    values = tiff_ifd_values(buffer, order, offset, (TIFF_IMAGE_WIDTH, TIFF_IMAGE_LENGTH))
    if len(values) < 2:
        return None
    return values[TIFF_IMAGE_LENGTH], values[TIFF_IMAGE_WIDTH]


IMAGE_FORMATS = 'PNG, JPEG, BMP, TIFF or WebP'  # the formats accepted: the only ones cv2 is given to decode


def image_format(buffer):
    """'PNG', 'JPEG', 'BMP', 'TIFF' or 'WebP' by the magic bytes ``buffer`` starts with; None for any other content
    (GIF, PPM, Sun raster, EXR, HDR, JPEG 2000...: cv2 would decode those too, without a size read here first)."""
    if buffer[:8] == PNG_SIGNATURE:
        return 'PNG'
    if buffer[:2] == b'\xff\xd8':
        return 'JPEG'
    if buffer[:2] == b'BM':
        return 'BMP'
    if bytes(buffer[:4]) in TIFF_BYTE_ORDERS:
        return 'TIFF'
    if buffer[:4] == b'RIFF' and buffer[8:12] == b'WEBP':
        return 'WebP'
    return None


SIZE_READERS = {'PNG': png_size, 'JPEG': jpeg_size, 'BMP': bmp_size, 'TIFF': tiff_size, 'WebP': webp_size}


def declared_size(buffer):
    """(height, width) that a PNG, JPEG, BMP, WebP or TIFF header declares; None if ``buffer`` is none of these or
    its header gives no size there (e.g. a TIFF whose first IFD is not in ``buffer``)."""
    kind = image_format(buffer)
    return SIZE_READERS[kind](buffer) if kind else None


PNG_END = b'\x00\x00\x00\x00IEND\xaeB`\x82'
JPEG_END = b'\xff\xd9'
JPEG_END_SEARCH = 1 << 12  # the end marker may be followed by padding or camera data


def ends_whole(buffer):
    """A PNG ends with its IEND chunk, a JPEG has its end-of-image marker near the end: not a truncated file
    (whose decoder would print its own messages, or for a JPEG fill the rest with gray, and go on). True for the other
    formats: they have no end marker to look for (BMP, TIFF and WebP are left to their decoders, as before)."""
    kind = image_format(buffer)
    if kind == 'PNG':
        return buffer.endswith(PNG_END)
    if kind == 'JPEG':
        return JPEG_END in buffer[-JPEG_END_SEARCH:]
    return True


CONTENT_SHOWN = 12  # bytes of an unknown file's start shown in its error


def check_format(buffer, name, complete):
    """The format of ``buffer`` (:func:`image_format`) and the (height, width) its header declares; DatasetError
    naming ``name`` for other content, or (with ``complete``: ``buffer`` is the whole file) for a header that gives
    no size. Without ``complete`` the size may be None: the header may lie beyond ``buffer``."""
    kind = image_format(buffer)
    if kind is None:
        raise DatasetError(f'{name}: cannot decode image: not a {IMAGE_FORMATS} image (its content starts with '
                           f'{bytes(buffer[:CONTENT_SHOWN])!r})')
    size = SIZE_READERS[kind](buffer)
    if size is None and complete:
        raise DatasetError(f'{name}: cannot decode image: its {kind} header gives no image size')
    return kind, size


def check_header(buffer, name, complete=True):
    """DatasetError naming ``name`` for an empty file, content that is not a PNG, JPEG, BMP, TIFF or WebP image, a
    header that declares no pixels or too many, or (with ``complete``: ``buffer`` is the whole file) a header that
    gives no size or a truncated PNG or JPEG. With ``complete`` a file that passes has a bounded size to decode."""
    if len(buffer) == 0:
        raise DatasetError(f'{name}: empty file (0 bytes), not an image')
    kind, size = check_format(buffer, name, complete)
    if size is None:
        return
    if complete and not ends_whole(buffer):
        raise DatasetError(f'{name}: truncated {kind} file ({len(buffer)} bytes, no end marker): an interrupted copy '
                           'or download? copy it again')
    h, w = size
    if h <= 0 or w <= 0:
        raise DatasetError(f'{name}: its header declares a {w}x{h} image (no pixels); not a usable image')
    if h * w > MAX_IMAGE_PIXELS:
        raise DatasetError(f'{name}: its header declares a {w}x{h} image ({h * w / 1e6:.0f} megapixels) in a file of '
                           f'{len(buffer)} bytes; images above {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels are refused '
                           '(crop or tile it first)')


HEADER_BYTES = 1 << 16  # enough for a PNG's IHDR, a JPEG's first start-of-frame after its EXIF segment, a BMP's or
# WebP's header and a small TIFF's first IFD


def check_image_file(path):
    """:func:`check_header` of the file ``path`` from its first bytes (decodes nothing); DatasetError naming it.
    Returns the (height, width) its header declares (:func:`declared_size`), None if it declares none there."""
    with open_image_file(path) as f:
        try:
            head = f.read(HEADER_BYTES)
        except OSError as e:
            raise DatasetNotFoundError(f'{path}: cannot read image ({e.strerror})') from e
    check_header(head, path, complete=len(head) < HEADER_BYTES)
    return declared_size(head)


def decode_raw(buffer, name):
    """Decode encoded image bytes to the stored pixels: uint8 or uint16 BGR (H, W, 3), or gray (H, W, 1).

    An alpha channel is dropped (the colour is kept as stored). ``name`` is used in error messages.
    This is what the decoded-image cache keeps; :func:`raw_to_float` makes the float image of it.
    The header of the whole ``buffer`` is checked first (:func:`check_header`): cv2 (which picks its decoder from the
    bytes) is only given a PNG, JPEG, BMP, TIFF or WebP whose declared size is bounded by :data:`MAX_IMAGE_PIXELS`.
    Every failure is one DatasetError naming ``name``.
    """
    check_header(buffer, name)
    try:
        img = cv2.imdecode(np.frombuffer(buffer, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        reason = (str(e).strip().splitlines() or ['?'])[-1].strip()
        raise DatasetError(f'{name}: cannot decode image ({reason})') from None
    if img is None:
        raise DatasetError(f'{name}: cannot decode image (not an image file, or corrupt)')
    if img.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f'{name}: unsupported pixel type {img.dtype} (expected 8- or 16-bit)')
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels == 4:
        img = np.ascontiguousarray(img[:, :, :3])
    elif channels not in (1, 3):
        raise DatasetError(f'{name}: unsupported number of channels {channels} (expected 1, 3 or 4)')
    return img


def raw_to_float(img):
    """uint8/uint16 (H, W, 1 or 3) -> float32 BGR (H, W, 3) in [0, 1]; gray is replicated to 3 channels.

    Works on any crop (view) of a decoded image: the values are those of the whole image's pixels.
    """
    img = img.astype(np.float32) / (255. if img.dtype == np.uint8 else 65535.)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img)


def decode_image(buffer, name):
    """Decode encoded image bytes to float32 BGR (H, W, 3) in [0, 1].

    Gray images are replicated to 3 channels; an alpha channel is dropped (the colour is kept
    as stored); 16-bit images are scaled by 65535. ``name`` is used in error messages.
    """
    return raw_to_float(decode_raw(buffer, name))


def open_image_file(path):
    """The binary file object of the image file ``path``; DatasetError naming it unless it is a regular file (a FIFO
    or a device could block or read without end: it is opened without blocking and refused) of at most
    :data:`MAX_FILE_BYTES`; DatasetNotFoundError if it cannot be opened."""
    try:
        return open_regular_file(path, MAX_FILE_BYTES, DatasetError, 'images')
    except OSError as e:
        raise DatasetNotFoundError(f'{path}: cannot read image ({e.strerror})') from e


def read_raw(path):
    """Read an image file as its stored pixels, uint8/uint16 (H, W, 1 or 3); see :func:`decode_raw`."""
    with open_image_file(path) as f:
        try:
            buffer = read_at_most(f, MAX_FILE_BYTES)
        except OSError as e:
            raise DatasetNotFoundError(f'{path}: cannot read image ({e.strerror})') from e
    return decode_raw(buffer, path)


def read_image(path):
    """Read an image file as float32 BGR (H, W, 3) in [0, 1]; see :func:`decode_image`."""
    return raw_to_float(read_raw(path))


def convert_color(img, color):
    """``color='y'``: BasicSR's Y channel, (H, W, 1); ``None``/``'rgb'``: unchanged BGR."""
    if color == 'y':
        return bgr2ycbcr(img, y_only=True)[..., None]
    if color in (None, 'rgb'):
        return img
    raise DatasetError(f"color must be 'y', 'rgb' or null, got {color!r}")


def list_images(folder):
    """Sorted image file names (not paths) directly inside ``folder``."""
    if not os.path.isdir(folder):
        raise DatasetNotFoundError(f'{folder}: folder not found')
    return sorted(f for f in os.listdir(folder) if is_image_file(f))


def index_images(folder, pattern, key_of, dataset, what='the same image'):
    """{key: path} of the images directly in ``folder`` whose names match the regex ``pattern``.

    ``key_of(match)`` gives a file's key, or None to skip the file. Two files with the same key are a
    DatasetError '<dataset>: two files for <what> in <folder>: <a> and <b>'; ``what`` may name the key
    as ``{key}``, e.g. 'shot {key}'.
    """
    paths = {}
    for name in list_images(folder):
        match = pattern.match(name)
        key = None if match is None else key_of(match)
        if key is None:
            continue
        if key in paths:
            raise DatasetError(f'{dataset}: two files for {what.format(key=key)} in {folder}: '
                               f'{os.path.basename(paths[key])} and {name}')
        paths[key] = os.path.join(folder, name)
    return paths
