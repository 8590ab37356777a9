"""dml_basicsr.utils.bounded_read: a file is read only if it is a regular file within its bound; a FIFO is refused
without blocking, a link to /dev/zero or a file over the bound before anything is read, each in one line naming it."""
import os
import re

import pytest

from conftest import ends_within
from dml_basicsr.utils.bounded_read import open_regular_file, read_bounded


class Refused(ValueError):
    pass


def test_a_regular_file_within_its_bound_reads_whole(tmp_path):
    (tmp_path / 'a.txt').write_bytes(b'caf\xc3\xa9\n')
    assert read_bounded(tmp_path / 'a.txt', 6) == b'caf\xc3\xa9\n'
    assert read_bounded(tmp_path / 'a.txt', 6, encoding='utf-8') == 'caf\u00e9\n'
    with open_regular_file(tmp_path / 'a.txt', 6) as f:
        assert f.read(3) == b'caf'


@pytest.mark.parametrize('make', ['fifo', 'dev_zero', 'folder'])
def test_anything_but_a_regular_file_is_refused_without_blocking(tmp_path, make):
    path = tmp_path / 'x.yml'
    {'fifo': lambda: os.mkfifo(path), 'dev_zero': lambda: path.symlink_to('/dev/zero'), 'folder': path.mkdir}[make]()
    with ends_within(10):
        for read in (lambda: read_bounded(path, 1 << 20, Refused, 'YAML files'),
                     lambda: open_regular_file(path, 1 << 20, Refused, 'YAML files')):
            with pytest.raises(Refused, match=re.escape(f'{path}: not a regular file') + '.*YAML files are read from '
                                              'regular files only'):
                read()


def test_a_file_over_its_bound_is_refused_naming_its_size(tmp_path):
    (tmp_path / 'big.csv').write_bytes(b'x' * 101)
    for read in (read_bounded, open_regular_file):
        with pytest.raises(Refused, match=re.escape(f'{tmp_path / "big.csv"}: 101 bytes, more than the 100 bytes '
                                                    'CSV files may have')):
            read(tmp_path / 'big.csv', 100, Refused, 'CSV files')
    assert read_bounded(tmp_path / 'big.csv', 101) == b'x' * 101


def test_a_missing_or_undecodable_file_is_one_line_of_the_callers_error(tmp_path):
    with pytest.raises(Refused, match=re.escape(f'{tmp_path / "none.yml"}: cannot read (No such file or directory)')):
        read_bounded(tmp_path / 'none.yml', 100, Refused)
    with pytest.raises(FileNotFoundError):  # opening: the caller tells "not found" from "refused"
        open_regular_file(tmp_path / 'none.yml', 100, Refused)
    (tmp_path / 'latin.yml').write_bytes(b'name: caf\xe9\n')
    with pytest.raises(Refused, match=r'latin\.yml: not UTF-8 text \(invalid continuation byte at byte 9\)'):
        read_bounded(tmp_path / 'latin.yml', 100, Refused, encoding='utf-8')


def test_a_small_file_is_read_without_reserving_the_bound(tmp_path, monkeypatch):
    """read_at_most asks the file for its own size (+1), not for the bound: f.read(n) reserves n bytes first."""
    from dml_basicsr.utils.bounded_read import read_at_most
    path = tmp_path / 'small.bin'
    path.write_bytes(b'x' * 10)
    with open(path, 'rb') as f:
        asked = []
        real_read = f.read
        monkeypatch.setattr(f, 'read', lambda n=-1: asked.append(n) or real_read(n), raising=False)
        assert read_at_most(f, 2 << 30) == b'x' * 10 and asked == [11]
