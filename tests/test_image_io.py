"""dml_basicsr.data.image_io: one decoder for every image, and one error naming the file for a hostile one (empty,
truncated, a decompression bomb, not an image), also through ``basicsr train`` and ``basicsr prepare``."""
import re

import pytest

from conftest import HOSTILE_IMAGES, realsr_train_options, run_cli, write_yaml


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
