"""The decoded-image cache of the paired datasets: options, a size estimate from PNG headers, the fill.

The cache is a dict {path: uint8/uint16 array (H, W, 1 or 3)} filled once in the process that builds
the dataset. BasicSR builds its datasets in the main process and only then starts the DataLoader
workers; on Linux they are forked and share the arrays' memory pages (nothing is written to them),
so N workers cost one copy. With the 'spawn' start method every worker gets its own copy.
"""

from .errors import DatasetError
from .image_io import read_png_header

GB = 1e9
DEFAULT_CACHE_MAX_GB = 4
# PNG colour type -> channels after decoding and dropping alpha: gray 1; gray+alpha, RGB, palette, RGBA 3.
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 3, 6: 3}


def cache_limit(opt, dataset):
    """The cache bound in bytes when ``cache`` is true, else None.

    Options: ``cache`` (bool, default false), ``cache_max_gb`` (number > 0, default 4; GB = 10^9 bytes).
    """
    if not opt.get('cache', False):
        return None
    name = f"{dataset} '{opt.get('name')}'"
    if (opt.get('io_backend') or {}).get('type', 'disk') != 'disk':
        raise DatasetError(f'{name}: cache works with io_backend {{type: disk}}; an LMDB is already read '
                           'from memory-mapped pages, set cache: false')
    max_gb = opt.get('cache_max_gb', DEFAULT_CACHE_MAX_GB)
    if isinstance(max_gb, bool) or not isinstance(max_gb, (int, float)) or not max_gb > 0:
        raise DatasetError(f'{name}: cache_max_gb must be a positive number (GB), got {max_gb!r}')
    return max_gb * GB


def png_nbytes(path):
    """Bytes of the decoded pixels of a PNG file from its header (after dropping alpha); None if not a PNG."""
    try:
        header = read_png_header(path)
    except OSError:
        return None  # the fill reports the unreadable file
    if header is None:
        return None
    height, width, depth, color_type = header
    return width * height * PNG_CHANNELS.get(color_type, 3) * (2 if depth == 16 else 1)


def too_big(dataset_opt, dataset, needed, count, max_bytes, at_least=False):
    """The one-line DatasetError for a cache that does not fit its bound."""
    needs = f'needs {"more than " if at_least else ""}{needed / GB:.3g} GB'
    return DatasetError(f"{dataset} '{dataset_opt.get('name')}': cache {needs} for {count} decoded images, more "
                        f'than cache_max_gb {max_bytes / GB:.3g}; raise cache_max_gb, set cache: false, or cut the '
                        'set into an LMDB with basicsr prepare')


def check_cache_size(paths, max_bytes, dataset_opt, dataset):
    """Raise :func:`too_big` if the PNG headers of ``paths`` already add up to more than ``max_bytes``.

    Reads 26 bytes a file; files that are not PNG count 0 here (the fill checks them as it goes).
    """
    needed = sum(png_nbytes(path) or 0 for path in paths)
    if needed > max_bytes:
        raise too_big(dataset_opt, dataset, needed, len(paths), max_bytes)


def fill_cache(paths, read, max_bytes, dataset_opt, dataset):
    """{path: read(path)} of every path, stopping with :func:`too_big` as soon as the total passes ``max_bytes``."""
    check_cache_size(paths, max_bytes, dataset_opt, dataset)
    cache, total = {}, 0
    for path in paths:
        img = read(path)
        total += img.nbytes
        if total > max_bytes:
            raise too_big(dataset_opt, dataset, total, len(paths), max_bytes, at_least=True)
        cache[path] = img
    return cache
