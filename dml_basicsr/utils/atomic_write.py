"""Files written whole or not at all: a temporary file in the same folder, fsync, then ``os.replace``."""
import contextlib
import os
import stat

TMP_PREFIX = '.partial-'
TMP_SUFFIX = '.tmp'


def tmp_path(path):
    """The temporary name under which ``path`` is written (same folder, never a final name)."""
    folder, base = os.path.split(path)
    return os.path.join(folder, f'{TMP_PREFIX}{base}.{os.getpid()}{TMP_SUFFIX}')


def create_tmp_file(tmp):
    """A new binary file at the temporary name ``tmp``, never written through a link: a regular file left there (by
    an earlier process with this pid) is removed first; FileExistsError naming ``tmp`` if anything else (a link, a
    folder) is there."""
    try:
        if stat.S_ISREG(os.lstat(tmp).st_mode):
            os.remove(tmp)
    except FileNotFoundError:
        pass
    return open(tmp, 'wb', opener=_create_exclusive)  # (its ``name`` is ``tmp``)


def _create_exclusive(path, flags):
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)


@contextlib.contextmanager
def atomic_file(path):
    """A binary file to write ``path`` through: it replaces ``path`` (fsync, then rename) only when the block
    ends without an error; an interrupt leaves the old file (or none), never a partial one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = tmp_path(path)
    f = create_tmp_file(tmp)
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def write_bytes_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` through :func:`atomic_file`."""
    with atomic_file(path) as f:
        f.write(data)
