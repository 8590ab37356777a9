"""dml_basicsr.utils.atomic_write: a file is written whole or not at all, and never through a link planted at its
temporary name."""
import os

import pytest

from dml_basicsr.utils import atomic_write


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / 'record.yml'
    target.write_text('old')
    atomic_write.write_bytes_atomic(str(target), b'new\n')
    assert target.read_text() == 'new\n' and os.listdir(tmp_path) == ['record.yml']
    with pytest.raises(RuntimeError), atomic_write.atomic_file(str(target)) as f:
        f.write(b'half')
        raise RuntimeError('interrupted')
    assert target.read_text() == 'new\n' and os.listdir(tmp_path) == ['record.yml']


@pytest.mark.parametrize('link_to', ['a file', 'a missing file'])
def test_a_link_at_the_temporary_name_is_never_written_through(tmp_path, link_to):
    victim = tmp_path / 'victim.txt'
    if link_to == 'a file':
        victim.write_text('keep')
    target = tmp_path / 'out' / 'record.yml'
    target.parent.mkdir()
    planted = atomic_write.tmp_path(str(target))
    os.symlink(victim, planted)
    with pytest.raises(FileExistsError, match='.partial-record.yml'):
        atomic_write.write_bytes_atomic(str(target), b'written')
    assert victim.read_text() == 'keep' if link_to == 'a file' else not os.path.lexists(victim)
    assert os.path.islink(planted) and not target.exists()


def test_a_regular_file_left_at_the_temporary_name_is_replaced(tmp_path):
    target = tmp_path / 'record.yml'
    with open(atomic_write.tmp_path(str(target)), 'wb') as f:
        f.write(b'left by an earlier process with this pid')
    atomic_write.write_bytes_atomic(str(target), b'written')
    assert target.read_bytes() == b'written' and os.listdir(tmp_path) == ['record.yml']
