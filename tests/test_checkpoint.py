"""dml_basicsr.utils.checkpoint: a checkpoint costs about the memory its file size says, or is refused by name; the
training states BasicSR saves load weights-only.

The hostile files are torch's own zip archives with an edited pickle or record, as a user could receive them.
"""
import collections
import hashlib
import os
import pickletools
import struct
import zipfile

import pytest
import torch

from conftest import ends_within
from dml_basicsr.utils import checkpoint
from dml_basicsr.utils.checkpoint import (TRAINING_STATE_GLOBALS, CheckpointError, load_checkpoint, load_state_dict,
                                          load_training_state)


def rewrite_archive(src, dst, pickle_edit=None, deflate_data=False):
    """``src`` (a torch.save zip) copied to ``dst`` with ``pickle_edit(bytes) -> bytes`` applied to its data.pkl and,
    if ``deflate_data``, its tensor records compressed."""
    with zipfile.ZipFile(src) as archive, zipfile.ZipFile(dst, 'w', zipfile.ZIP_STORED) as out:
        for info in archive.infolist():
            data = archive.read(info.filename)
            if info.filename.endswith('/data.pkl') and pickle_edit:
                data = pickle_edit(data)
            compress = zipfile.ZIP_DEFLATED if deflate_data and '/data/' in info.filename else zipfile.ZIP_STORED
            out.writestr(info.filename, data, compress_type=compress)


def binint(value):
    return b'J' + struct.pack('<i', value)


def test_an_ordinary_checkpoint_with_tied_weights_loads(tmp_path):
    weight = torch.arange(12.).reshape(3, 4)
    torch.save({'params': {'a': weight, 'b': weight, 'c': weight[1:]}}, tmp_path / 'tied.pth')
    state = load_state_dict(str(tmp_path / 'tied.pth'))
    assert torch.equal(state['b'], weight) and torch.equal(state['c'], weight[1:])


def test_an_expanded_view_is_refused_before_it_takes_memory(tmp_path):
    """A 1 kB file that declares a stride-0 view of 10^9 floats: torch.load returns it for free; the first .float()
    or isfinite of it would take 4 GB."""
    torch.save({'w': torch.zeros(10)}, tmp_path / 'small.pth')

    def expand(pkl):
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(pkl)]
        assert ('BININT1', 10) in ops  # the storage's numel and the tensor's size, as torch 2.x writes them
        size_then_stride = b'K\x00K\n\x85'  # storage offset 0, size (10,)
        assert size_then_stride + b'q\x08K\x01\x85' in pkl  # ... then stride (1,)
        return pkl.replace(size_then_stride + b'q\x08K\x01\x85', b'K\x00' + binint(10 ** 9) + b'\x85q\x08K\x00\x85')

    rewrite_archive(tmp_path / 'small.pth', tmp_path / 'expanded.pth', expand)
    with pytest.raises(CheckpointError, match=r'expanded\.pth: refused .* shape \(1000000000,\) .* expanded view'):
        load_checkpoint(str(tmp_path / 'expanded.pth'))


def test_a_zip_bomb_is_refused_from_the_zip_directory(tmp_path):
    """Records of zeros deflate ~1000:1; torch.load would inflate them. Refused before anything is inflated."""
    torch.save({'w': torch.zeros(2_000_000)}, tmp_path / 'zeros.pth')
    rewrite_archive(tmp_path / 'zeros.pth', tmp_path / 'bomb.pth', deflate_data=True)
    assert os.path.getsize(tmp_path / 'bomb.pth') < 100_000
    with pytest.raises(CheckpointError, match=r'bomb\.pth: refused .* declare \d+ bytes of compressed records'):
        load_checkpoint(str(tmp_path / 'bomb.pth'))


def test_one_storage_under_many_names_is_refused(tmp_path):
    big = torch.zeros(1 << 19)  # 2 MiB
    torch.save({f'w{i}': big for i in range(8)}, tmp_path / 'repeated.pth')
    with pytest.raises(CheckpointError, match=r'repeated\.pth: refused .* tensors declare 16777216 bytes over '
                                              r'2097152 bytes of storage'):
        load_checkpoint(str(tmp_path / 'repeated.pth'))


def test_a_declared_size_larger_than_its_record_is_refused(tmp_path):
    torch.save({'w': torch.zeros(10)}, tmp_path / 'small.pth')
    rewrite_archive(tmp_path / 'small.pth', tmp_path / 'liar.pth',
                    lambda pkl: pkl.replace(b'K\nt', binint(10 ** 9) + b't', 1))
    with pytest.raises(CheckpointError, match=r'liar\.pth: cannot load a checkpoint'):
        load_checkpoint(str(tmp_path / 'liar.pth'))


@pytest.mark.parametrize('content', [b'', b'not a checkpoint', b'PK\x03\x04truncated'])
def test_a_file_that_is_not_a_torch_archive_is_one_error(tmp_path, content):
    (tmp_path / 'x.pth').write_bytes(content)
    with pytest.raises(CheckpointError, match=r'x\.pth: cannot load a checkpoint \(not a zip archive'):
        load_checkpoint(str(tmp_path / 'x.pth'))


def _basicsr_states():
    """Training states as BasicSR saves them, of Adam with every scheduler of this package's option files."""
    from basicsr.models.lr_scheduler import CosineAnnealingRestartLR, MultiStepRestartLR

    states = []
    for make in (lambda o: MultiStepRestartLR(o, milestones=[2, 4], gamma=0.5),
                 lambda o: CosineAnnealingRestartLR(o, periods=[2, 2], restart_weights=[1, 0.5], eta_min=1e-7)):
        net = torch.nn.Conv2d(1, 2, 3)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.99))
        scheduler = make(optimizer)
        for _ in range(3):
            net(torch.rand(1, 1, 5, 5)).sum().backward()
            optimizer.step()
            scheduler.step()
        states.append({'epoch': 1, 'iter': 3, 'optimizers': [optimizer.state_dict()],
                       'schedulers': [scheduler.state_dict()]})
    return states


def test_real_training_states_load_weights_only(tmp_path):
    assert set(TRAINING_STATE_GLOBALS) == {collections.Counter, collections.OrderedDict}
    for i, state in enumerate(_basicsr_states()):
        path = tmp_path / f'{i}.state'
        torch.save(state, path)
        with torch.serialization.safe_globals(list(TRAINING_STATE_GLOBALS)):
            assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
        loaded = load_training_state(str(path))
        assert loaded['iter'] == 3 and loaded['schedulers'][0] == state['schedulers'][0]
    assert isinstance(loaded['optimizers'][0]['state'][0]['exp_avg'], torch.Tensor)


def test_save_checkpoint_never_writes_through_a_link(tmp_path):
    from dml_basicsr.utils.output_folder import OutputFolderError
    (tmp_path / 'victim.pth').write_bytes(b'keep')
    (tmp_path / 'exp' / 'models').mkdir(parents=True)
    (tmp_path / 'exp' / 'models' / 'net_g_2.pth').symlink_to(tmp_path / 'victim.pth')
    with pytest.raises(OutputFolderError, match='net_g_2.pth is a symbolic link'):
        checkpoint.save_checkpoint({'w': torch.ones(1)}, str(tmp_path / 'exp' / 'models' / 'net_g_2.pth'))
    (tmp_path / 'exp' / 'states').symlink_to(tmp_path)  # a linked folder below the run folder
    with pytest.raises(OutputFolderError, match='states is a symbolic link'):
        checkpoint.save_checkpoint({'w': torch.ones(1)}, str(tmp_path / 'exp' / 'states' / '2.state'),
                                   root=str(tmp_path / 'exp'))
    with pytest.raises(OutputFolderError, match='holds the input'):
        checkpoint.save_checkpoint({'w': torch.ones(1)}, str(tmp_path / 'model.pth'), inputs=[str(tmp_path / 'exp')])
    assert (tmp_path / 'victim.pth').read_bytes() == b'keep' and not (tmp_path / '2.state').exists()
    checkpoint.save_checkpoint({'w': torch.ones(1)}, str(tmp_path / 'exp' / 'models' / 'net_g_4.pth'))
    assert load_checkpoint(str(tmp_path / 'exp' / 'models' / 'net_g_4.pth'))['w'].tolist() == [1.0]


def test_a_shared_object_graph_is_walked_once_per_container(tmp_path):
    """A 'billion laughs' pickle: a=[a, a] nested 60 times is 61 lists in a small file, 2^60 paths as a tree."""
    graph = [torch.zeros(2)]
    for _ in range(60):
        graph = [graph, graph]
    torch.save({'params': graph}, tmp_path / 'laughs.pth')
    assert os.path.getsize(tmp_path / 'laughs.pth') < 10_000
    with ends_within(20):
        loaded = load_checkpoint(str(tmp_path / 'laughs.pth'))
        with pytest.raises(CheckpointError, match=r'laughs\.pth: no network weights in it'):
            load_state_dict(str(tmp_path / 'laughs.pth'))
    assert loaded['params'][0] is loaded['params'][1]


def test_a_checkpoint_holding_more_values_than_the_bound_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, 'MAX_CHECKPOINT_VALUES', 1000)
    # 1 + 2 + 1 + 997 values: the checkpoint itself, the items of its dict, of params and of the log
    torch.save({'params': {'w': torch.zeros(3)}, 'log': list(range(997))}, tmp_path / 'many.pth')
    with pytest.raises(CheckpointError, match=r'many\.pth: refused to load this checkpoint: its containers hold more '
                                              r'than 1000 values'):
        load_checkpoint(str(tmp_path / 'many.pth'))
    torch.save({'params': {'w': torch.zeros(3)}, 'log': list(range(996))}, tmp_path / 'enough.pth')
    assert len(load_checkpoint(str(tmp_path / 'enough.pth'))['log']) == 996


def test_a_checkpoint_over_the_size_bound_is_refused_before_it_is_read(tmp_path, monkeypatch):
    torch.save({'params': {'w': torch.zeros(1000)}}, tmp_path / 'net.pth')
    size = os.path.getsize(tmp_path / 'net.pth')
    monkeypatch.setattr(checkpoint, 'MAX_CHECKPOINT_BYTES', size - 1)
    with pytest.raises(CheckpointError, match=rf'net\.pth: {size} bytes, more than the {size - 1} bytes checkpoints '
                                              'may have'):
        load_state_dict(str(tmp_path / 'net.pth'))
    with pytest.raises(CheckpointError, match=rf'net\.pth: {size} bytes, more than the {size - 1} bytes training '
                                              'states may have'):
        load_training_state(str(tmp_path / 'net.pth'))
    monkeypatch.setattr(checkpoint, 'MAX_CHECKPOINT_BYTES', size)
    assert load_state_dict(str(tmp_path / 'net.pth'))['w'].shape == (1000,)


@pytest.mark.parametrize('make', ['fifo', 'link to /dev/zero', 'folder'])
@pytest.mark.parametrize('read, what', [(load_checkpoint, 'checkpoints'), (checkpoint.file_sha256, 'hashed files')])
def test_a_file_that_is_not_regular_is_refused_without_blocking(tmp_path, make, read, what):
    path = tmp_path / 'net.pth'
    {'fifo': lambda: os.mkfifo(path), 'link to /dev/zero': lambda: path.symlink_to('/dev/zero'),
     'folder': path.mkdir}[make]()
    with ends_within(10), pytest.raises(CheckpointError, match=r'net\.pth: not a regular file \(a FIFO, a device or '
                                                                rf'a folder\); {what} are read from regular files'):
        read(str(path))


def test_a_missing_checkpoint_is_not_found(tmp_path):
    with pytest.raises(CheckpointError, match=r'none\.pth: checkpoint not found'):
        load_checkpoint(str(tmp_path / 'none.pth'))


def test_hashing_a_regular_file_gives_the_sha256_of_its_bytes(tmp_path):
    data = os.urandom(3 << 20)  # more than one read block
    (tmp_path / 'net.pth').write_bytes(data)
    assert checkpoint.file_sha256(str(tmp_path / 'net.pth')) == hashlib.sha256(data).hexdigest()
    with pytest.raises(FileNotFoundError):
        checkpoint.file_sha256(str(tmp_path / 'none.pth'))
