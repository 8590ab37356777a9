"""Files read whole, with a bound: regular files only (a FIFO or a device is refused without blocking), at most a
given number of bytes (a link to ``/dev/zero`` or a huge file is refused before anything is read).

Images and checkpoints are opened with :func:`open_regular_file`; YAML files (options, records, manifests), metrics
CSVs and meta_info.txt are read with :func:`read_bounded`; each with the bound of its kind below.
"""
import os
import stat

MAX_YAML_BYTES = 16 << 20  # option files, records (synthesis.yml, prepared.yml), manifests, noise files
MAX_CSV_BYTES = 256 << 20  # per-image metrics CSVs (a row is ~50 bytes: millions of rows)
MAX_META_INFO_BYTES = 64 << 20  # meta_info.txt of an output folder or an LMDB (a line per image)
MAX_CHECKPOINT_BYTES = 4 << 30  # network weights and training states (a large SR network's state is ~100 MB)


def open_regular_file(path, max_bytes, error=ValueError, kind='files'):
    """The binary file object of ``path`` (blocking reads), opened without blocking; ``error('<path>: ...')`` unless
    it is a regular file of at most ``max_bytes`` bytes (``kind``, e.g. 'images', names what is read in the
    message); OSError as ``os.open`` raises it if it cannot be opened."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f'{path}: not a regular file (a FIFO, a device or a folder); {kind} are read from regular '
                        'files only')
        if st.st_size > max_bytes:
            raise error(f'{path}: {st.st_size} bytes, more than the {max_bytes} bytes {kind} may have')
        os.set_blocking(fd, True)
        return os.fdopen(fd, 'rb')
    except BaseException:
        os.close(fd)
        raise


def read_at_most(f, max_bytes):
    """The bytes of the open regular file ``f``, at most ``max_bytes`` + 1 of them (one more tells a file that grew
    past the bound). Reads the size it has: ``f.read(n)`` reserves n bytes first, so reading 2 GiB + 1 for a small
    image would reserve 2 GiB."""
    return f.read(min(os.fstat(f.fileno()).st_size, max_bytes) + 1)


def read_bounded(path, max_bytes, error=ValueError, kind='files', encoding=None):
    """The bytes of the regular file ``path`` (the text, decoded, if ``encoding``), at most ``max_bytes`` of them;
    every failure is one line ``error('<path>: ...')``: not a regular file, too large (also if it grew while being
    read), unreadable, not text of ``encoding``."""
    try:
        with open_regular_file(path, max_bytes, error, kind) as f:
            data = read_at_most(f, max_bytes)
    except OSError as e:
        raise error(f'{path}: cannot read ({e.strerror or e})') from None
    if len(data) > max_bytes:
        raise error(f'{path}: more than the {max_bytes} bytes {kind} may have')
    if encoding is None:
        return data
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise error(f'{path}: not {encoding.upper()} text ({e.reason} at byte {e.start})') from None
