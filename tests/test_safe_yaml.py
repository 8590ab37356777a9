"""dml_basicsr.utils.safe_yaml: every YAML file this project reads (option files of ``basicsr train``/``test``/
``prepare``, manifests, records) is plain data read as BasicSR's loader read it; a tag that would run code or build
a Python object is refused with one line (the marker file it would touch must not exist afterwards), and so is a
file that is not UTF-8.
"""
import glob
import os
import re

import pytest
import yaml

from conftest import (CODE_TAGS, PROJECT_ROOT, assert_refused, hostile, make_realsr, one_line, run_cli,
                      tiny_dml_options, write_hostile_options, write_yaml)
from conftest import ends_within


def test_every_shipped_yaml_reads_as_with_basicsrs_loader():
    """The safe loader reads every option file, manifest and record in the repository as BasicSR's (unsafe,
    OrderedDict) loader did: the same data, the same key order."""
    from dml_basicsr.utils.safe_yaml import read_yaml

    files = [p for pattern in ('options/**/*.yml', 'model_zoo/**/*.yml', 'dml_basicsr/**/*.yml')
             for p in glob.glob(str(PROJECT_ROOT / pattern), recursive=True)]
    assert len(files) > 20
    for path in files:
        with open(path) as f:
            reference = yaml.load(f, Loader=yaml.FullLoader)  # what BasicSR's CLoader builds, minus code
        data = read_yaml(path)
        assert data == reference, path
        if isinstance(data, dict):
            assert list(data) == list(reference), path


def test_safe_loader_keeps_basicsr_tags_and_reads_exponent_floats():
    from dml_basicsr.utils.safe_yaml import dump_yaml, load_yaml_text

    data = load_yaml_text('lr: !!float 1e-4\nname: !!str 123\nb: 1e-3\nc: [2E5, -1.5e+2]\nd: ~\nz: 1\na: 2\n', 'x')
    assert data == dict(lr=1e-4, name='123', b=1e-3, c=[2e5, -150.0], d=None, z=1, a=2)
    assert list(data) == ['lr', 'name', 'b', 'c', 'd', 'z', 'a']
    assert load_yaml_text(dump_yaml({'s': '1e-3'}), 'x') == {'s': '1e-3'}  # the string round-trips quoted


@pytest.mark.parametrize('tag', CODE_TAGS)
@pytest.mark.parametrize('command', ['train', 'test'])
def test_option_file_with_a_python_tag_runs_nothing(tmp_path, command, tag):
    marker = tmp_path / 'MARKER'
    opt_file = write_hostile_options(tmp_path / 'opt.yml', tiny_dml_options('hostile'), 'name', tag, marker)
    proc = run_cli([command, '-opt', str(opt_file)], cwd=tmp_path)
    assert_refused(proc, command, str(opt_file), 'Python object', 'line 1')
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['opt.yml']  # no experiments/, results/, tb_logger/


@pytest.mark.parametrize('tag', CODE_TAGS[:2])
def test_nested_python_tag_and_custom_tags_are_refused(tmp_path, tag):
    marker = tmp_path / 'MARKER'
    text = yaml.safe_dump(tiny_dml_options('hostile'), sort_keys=False)
    text = text.replace('  total_iter: 4', f'  total_iter: {hostile(tag, marker)}')
    assert hostile(tag, marker) in text
    (tmp_path / 'opt.yml').write_text(text)
    proc = run_cli(['train', '-opt', 'opt.yml'], cwd=tmp_path)
    assert_refused(proc, 'train', 'opt.yml', 'Python object')
    (tmp_path / 'custom.yml').write_text('name: !shell touch MARKER\n')
    assert_refused(run_cli(['train', '-opt', 'custom.yml'], cwd=tmp_path), 'train', 'custom.yml', '!shell',
                   'not a plain-data tag')
    assert not marker.exists() and not (tmp_path / 'experiments').exists()


def test_prepare_option_file_with_a_python_tag_runs_nothing(tmp_path):
    marker = tmp_path / 'MARKER'
    make_realsr(tmp_path / 'RealSR')
    opt = {'scale': 4, 'datasets': {'train': {'type': 'RealSRDataset', 'dataroot': str(tmp_path / 'RealSR')}}}
    for tag in CODE_TAGS:
        write_hostile_options(tmp_path / 'prep.yml', opt, 'name', tag, marker)
        proc = run_cli(['prepare', '-opt', 'prep.yml', '--output', 'prepared'], cwd=tmp_path)
        assert_refused(proc, 'prepare', 'prep.yml', 'Python object')
    proc = run_cli(['prepare', '-opt', 'prep.yml', '--output', 'prepared', '--force_yml',
                    'name=!!python/object/apply:os.system ["touch MARKER"]'], cwd=tmp_path)
    assert_refused(proc, 'prepare', 'prep.yml')
    assert not marker.exists() and not (tmp_path / 'MARKER').exists() and not (tmp_path / 'prepared').exists()


@pytest.mark.parametrize('content, fragment', [
    (b'name: caf\xe9\n', 'UTF-8'),
    (b'\xff\xfe\x00\x00', 'UTF-8'),
])
def test_an_option_file_that_is_not_utf8_is_one_line(tmp_path, content, fragment):
    (tmp_path / 'opt.yml').write_bytes(content)
    line = one_line(run_cli(['train', '-opt', str(tmp_path / 'opt.yml')], cwd=tmp_path), 'train', 2)
    assert 'opt.yml' in line and fragment in line
    assert not (tmp_path / 'experiments').exists()



@pytest.mark.parametrize('make', ['fifo', 'folder'])
def test_a_yaml_file_that_is_a_fifo_or_a_folder_is_refused_without_blocking(tmp_path, make):
    """A FIFO at the name of a record (``OUT/synthesis.yml``, a run's option copy) would block a plain open."""
    from dml_basicsr.utils.safe_yaml import read_yaml

    path = tmp_path / 'record.yml'
    os.mkfifo(path) if make == 'fifo' else path.mkdir()
    with ends_within(10), pytest.raises(ValueError, match=re.escape(f'{path}: not a regular file (a FIFO, a device '
                                                                    'or a folder)')):
        read_yaml(path)


@pytest.mark.parametrize('command', ['train', 'test'])
def test_an_option_file_over_the_bound_is_one_line_before_anything_is_written(tmp_path, monkeypatch, command):
    from dml_basicsr.utils import safe_yaml

    monkeypatch.setattr(safe_yaml, 'MAX_YAML_BYTES', 64)
    write_yaml(tmp_path / 'opt.yml', tiny_dml_options('big'))
    size = (tmp_path / 'opt.yml').stat().st_size
    proc = run_cli([command, '-opt', 'opt.yml'], cwd=tmp_path)
    assert_refused(proc, command, f'opt.yml: {size} bytes, more than the 64 bytes YAML files may have')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['opt.yml']  # no experiments/, results/, tb_logger/


def test_a_yaml_file_over_its_bound_is_refused_naming_its_size(tmp_path, monkeypatch):
    from dml_basicsr.utils import safe_yaml

    monkeypatch.setattr(safe_yaml, 'MAX_YAML_BYTES', 64)
    path = tmp_path / 'opt.yml'
    path.write_text('name: x\n' * 9)  # 72 bytes
    with pytest.raises(ValueError, match=re.escape(f'{path}: 72 bytes, more than the 64 bytes YAML files may have')):
        safe_yaml.read_yaml(path)
    path.write_text('name: x\n' * 8)
    assert safe_yaml.read_yaml(path) == {'name': 'x'}


def test_a_string_repeated_through_aliases_past_the_file_bound_is_one_line(tmp_path, monkeypatch):
    from dml_basicsr.utils import safe_yaml

    monkeypatch.setattr(safe_yaml, 'MAX_EXPANDED_CHARS', 1000)
    path = tmp_path / 'opt.yml'
    path.write_text('a: &a "' + 'x' * 100 + '"\nb: [' + ', '.join(['*a'] * 10) + ']\n')  # 1102 characters expanded
    with pytest.raises(ValueError, match=re.escape(f'{path}: its aliases expand it to 1102 characters of text, more '
                                                   'than 1000 (an alias bomb?)')):
        safe_yaml.read_yaml(path)
    path.write_text('a: &a "' + 'x' * 100 + '"\nb: [' + ', '.join(['*a'] * 8) + ']\n')  # 902
    assert safe_yaml.read_yaml(path) == {'a': 'x' * 100, 'b': ['x' * 100] * 8}


def test_base_60_numbers_are_strings_and_read_in_linear_time():
    from dml_basicsr.utils.safe_yaml import load_yaml_text

    text = 'notes: ' + ':'.join(['1'] * 200_000)  # PyYAML 1.1's base-60 int: 13 s, quadratic
    with ends_within(5):
        assert load_yaml_text(text, 'x')['notes'] == text[len('notes: '):]
    data = load_yaml_text('t: 1:20\nu: -190:20:30.15\ni: 1_000\nh: 0x1f\nf: 1e-3\ng: !!float 5e3\nb: true\nn: ~\n', 'x')
    assert data == dict(t='1:20', u='-190:20:30.15', i=1000, h=31, f=1e-3, g=5e3, b=True, n=None)
    with ends_within(5), pytest.raises(ValueError, match=r'^x: not valid YAML: a base-60 !!int \(1:20\) is not read; '
                                                         r'write it in decimal at line 1, column 4$'):
        load_yaml_text('a: !!int ' + ':'.join(['1'] * 200_000), 'x')


@pytest.mark.parametrize('value, fragment', [('1' * 5000, 'a !!int value that cannot be read (Exceeds the limit'),
                                             ('2001-13-01', 'a !!timestamp value that cannot be read (month must')])
def test_a_value_python_cannot_hold_is_one_line_naming_the_file(tmp_path, value, fragment):
    from dml_basicsr.utils.safe_yaml import read_yaml

    path = tmp_path / 'opt.yml'
    path.write_text(f'name: x\nmanual_seed: {value}\n')
    with pytest.raises(ValueError) as info:
        read_yaml(path)
    line = str(info.value)
    assert line.startswith(f'{path}: not valid YAML: {fragment}') and line.endswith(' at line 2, column 14')
    assert '\n' not in line
