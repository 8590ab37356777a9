"""Issue 17, the hostile-input classes: no file runs code, no output destroys an input, one writer per output.

Each class is tried with several inputs of the class; every code-execution path has a marker-file test (the
marker must not exist afterwards).
"""
import errno
import glob
import os
import re
import shutil
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import (PROJECT_ROOT, expect_option_error, make_realsr, one_error_line, run_cli, tiny_dml_options,
                      write_yaml)
from dml_basicsr.archs import DMLNet
from dml_basicsr.utils.checkpoint import load_state_dict

# Tags that would run `touch MARKER` under PyYAML's full/unsafe loaders (and a custom tag), as YAML text.
CODE_TAGS = [
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/apply:subprocess.call [["touch", "{marker}"]]',
    '!!python/object/new:subprocess.Popen [["touch", "{marker}"]]',
    '!!python/name:os.system',
]


def hostile(tag, marker):
    return tag.format(marker=marker)


def write_hostile_options(path, opt, key, tag, marker):
    """``opt`` written to ``path`` with the value of the top-level ``key`` replaced by the YAML ``tag``."""
    opt = {k: v for k, v in opt.items() if k != key}
    path.write_text(f'{key}: {hostile(tag, marker)}\n' + yaml.safe_dump(opt, sort_keys=False))
    return path


def assert_refused(proc, command, *fragments):
    line = one_error_line(proc, command)
    assert proc.returncode == 2, proc.stderr[-2000:]
    for fragment in fragments:
        assert fragment in line, line
    return line


# ------------------------------------------------------------------------- 1. files that run code


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


def parsed(*argv):
    from dml_basicsr.cli import build_parser

    return build_parser().parse_args(list(argv))


def test_basicsrs_option_parser_runs_nothing_during_our_command(tmp_path, monkeypatch):
    """During our command basicsr.train/test call parse_options: what they get is the safe one, for the file, for
    --force_yml values (BasicSR eval'd a value starting with '[') and for --force_yml keys (BasicSR exec'd
    'opt["<key>"]=value')."""
    import basicsr.test
    import basicsr.train
    import basicsr.utils.options

    from dml_basicsr.commands.basicsr_scope import basicsr_run
    from dml_basicsr.utils.options import OptionError

    marker = tmp_path / 'MARKER'
    for tag in CODE_TAGS:
        opt_file = write_hostile_options(tmp_path / 'opt.yml', tiny_dml_options('x'), 'name', tag, marker)
        with basicsr_run(parsed('train', '-opt', str(opt_file))):
            for parse in (basicsr.utils.options.parse_options, basicsr.train.parse_options, basicsr.test.parse_options):
                with pytest.raises(OptionError, match='Python object'):
                    parse(str(tmp_path), is_train=True)
    write_yaml(tmp_path / 'ok.yml', tiny_dml_options('x'))
    value = f"[__import__('os').system('touch {marker}')]"
    key = f'name"];__import__("os").system("touch {marker}");opt["x'
    with basicsr_run(parsed('train', '-opt', str(tmp_path / 'ok.yml'), '--force_yml', f'datasets:val:images={value}',
                            f'{key}=1', 'train:total_iter=1e1', 'manual_seed=~')):
        opt, _ = basicsr.train.parse_options(str(tmp_path), is_train=True)
        assert basicsr.utils.options._postprocess_yml_value(value) == [value[1:-1]]
        loader = basicsr.utils.options.ordered_yaml()[0]
        with pytest.raises(yaml.YAMLError):
            yaml.load(hostile(CODE_TAGS[0], marker), Loader=loader)
    assert opt['datasets']['val']['images'] == [value[1:-1]]  # a list of one harmless string
    assert opt[key] == 1 and opt['train']['total_iter'] == 10.0 and opt['manual_seed'] is None
    with basicsr_run(parsed('train', '-opt', str(tmp_path / 'ok.yml'), '--force_yml', f'name={value}')):
        with pytest.raises(OptionError, match='ok.yml: name must be a string'):
            basicsr.train.parse_options(str(tmp_path), is_train=True)
    assert not marker.exists()


@pytest.mark.parametrize('entry, fragment', [
    ('train=1=2', None),  # the value is '1=2', a string: accepted
    ('datasets:nosuch:gt_size=4', 'no section datasets:nosuch'),
    ('name', 'expected key=value'),
    (':x=1', 'expected key=value'),
    ('name=[unclosed', 'not valid YAML'),
    ('name=!!python/object/apply:os.system ["touch MARKER"]', 'Python object'),
])
def test_typed_force_yml_values_are_yaml_data(tmp_path, entry, fragment):
    from dml_basicsr.utils.options import OptionError, load_options

    opt_file = write_yaml(tmp_path / 'opt.yml', tiny_dml_options('x'))
    if fragment is None:
        assert load_options(str(opt_file), [entry])['train'] == '1=2'
        return
    with pytest.raises(OptionError, match=fragment):
        load_options(str(opt_file), [entry])
    proc = run_cli(['train', '-opt', 'opt.yml', '--force_yml', entry], cwd=tmp_path)
    assert_refused(proc, 'train', 'opt.yml', '--force_yml', fragment)
    assert not (tmp_path / 'MARKER').exists() and not (tmp_path / 'experiments').exists()


def test_typed_force_yml_code_is_a_harmless_list(tmp_path):
    """A typed --force_yml value that BasicSR would eval is a list of one string; here it names an image the
    dataset check does not find, so the run stops with one line naming it, and nothing ran."""
    marker = tmp_path / 'MARKER'
    write_yaml(tmp_path / 'opt.yml', tiny_dml_options('x'))
    code = f"__import__('os').system('touch {marker}')"
    proc = run_cli(['train', '-opt', 'opt.yml', '--force_yml', f'datasets:val:images=[{code}]'], cwd=tmp_path)
    assert_refused(proc, 'train', code)
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


DML_NETWORK = dict(type='DMLNet', num_in_ch=1, num_basis=3, kernel_size=7, scale=1, num_feat=8)


def dml_experiment(root, command_line, body=None):
    """An experiment folder as ``basicsr train`` leaves it: the option copy (``command_line`` recorded atop) and
    ``models/net_g_latest.pth`` of a tiny DMLNet."""
    exp = root / 'experiments' / 'tiny'
    (exp / 'models').mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save({'params': DMLNet(**{k: v for k, v in DML_NETWORK.items() if k != 'type'}).state_dict()},
               exp / 'models' / 'net_g_latest.pth')
    body = yaml.safe_dump({'name': 'tiny', 'network_g': DML_NETWORK}, sort_keys=False) if body is None else body
    (exp / 'train_tiny.yml').write_text(f'# GENERATE TIME: now\n# CMD:\n# {command_line}\n\n{body}')
    return exp


def visualize(root, exp):
    return run_cli(['visualize', '--image', 'embedded:camera', '--output', str(root / 'fig'), '--dml', str(exp),
                    '--grid', '2'], cwd=root)


@pytest.mark.parametrize('tag', CODE_TAGS)
def test_visualize_experiment_copy_with_a_python_tag_runs_nothing(tmp_path, tag):
    marker = tmp_path / 'MARKER'
    body = f'name: {hostile(tag, marker)}\n' + yaml.safe_dump({'network_g': DML_NETWORK})
    exp = dml_experiment(tmp_path, 'basicsr train -opt options/x.yml', body)
    assert_refused(visualize(tmp_path, exp), 'visualize', 'train_tiny.yml', 'Python object')
    assert not marker.exists() and not (tmp_path / 'fig').exists()


def test_visualize_recorded_force_yml_code_runs_nothing(tmp_path):
    """The recorded --force_yml values are YAML data: quoted as this package records them (shlex), BasicSR's eval
    bait is a harmless list of one string and the pictures are made; joined with spaces as BasicSR recorded them,
    it is not valid YAML, one line. A recorded key or tag runs nothing either."""
    marker = tmp_path / 'MARKER'
    code = f"__import__('os').system('touch {marker}')"
    exp = dml_experiment(tmp_path, f'basicsr train -opt options/x.yml --force_yml "name=[{code}]" --auto_resume')
    proc = visualize(tmp_path, exp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / 'fig' / 'basis.png').is_file()
    for recorded, fragment in [
        (f'--force_yml name=[a, {code}]', 'the recorded --force_yml'),  # BasicSR's unquoted record: 'name=[a,'
        ("--force_yml 'name=!!python/object/apply:os.system [\"touch MARKER\"]'", 'Python object'),
        (f"--force_yml 'network_g:num_basis=[{code}]'", 'num_basis'),
        ("--force_yml 'name=\"unterminated", 'recorded command'),
    ]:
        exp = dml_experiment(tmp_path, f'basicsr train -opt options/x.yml {recorded}')
        assert_refused(visualize(tmp_path / 'fig', exp), 'visualize', fragment)
    assert not marker.exists() and not (tmp_path / 'fig' / 'MARKER').exists()


def test_training_records_its_command_so_that_the_overrides_read_back_whole(tmp_path):
    from dml_basicsr.commands.basicsr_options import basicsr_argv, copy_opt_file, recorded_command
    from dml_basicsr.utils.options import recorded_overrides

    write_yaml(tmp_path / 'opt.yml', {'name': 'x'})
    (tmp_path / 'exp').mkdir()
    args = parsed('train', '-opt', 'opt.yml', '--force_yml', 'name=a b', "network_g:note=it's", '--debug')
    copy_opt_file(str(tmp_path / 'opt.yml'), str(tmp_path / 'exp'), recorded_command(basicsr_argv(args)))
    copy = tmp_path / 'exp' / 'opt.yml'
    assert copy.read_text().splitlines()[1:3] == ['# CMD:', "# basicsr train -opt opt.yml --debug --force_yml "
                                                  "'name=a b' 'network_g:note=it'\"'\"'s'"]
    assert recorded_overrides(str(copy)) == ['name=a b', "network_g:note=it's"]


@pytest.mark.parametrize('tag', CODE_TAGS)
def test_manifest_with_a_python_tag_runs_nothing(tmp_path, tag):
    from dml_basicsr.utils.model_manifest import main

    marker = tmp_path / 'MARKER'
    (tmp_path / 'models.yml').write_text(f'rows:\n  - label: {hostile(tag, marker)}\n')
    assert main(['check', str(tmp_path / 'models.yml')]) == 2
    opt = {'name': 'zoo', 'manifest': str(tmp_path / 'models.yml'), 'model_type': 'OnlineSynthesisSRModel',
           'num_gpu': 0, 'datasets': {}, 'path': {}}
    proc = run_cli(['test', '-opt', str(write_yaml(tmp_path / 'test.yml', opt))], cwd=tmp_path)
    assert_refused(proc, 'test', 'models.yml', 'Python object')
    assert not marker.exists() and not (tmp_path / 'results').exists()


def test_shipped_models_manifest_is_read_safely(tmp_path, monkeypatch):
    from dml_basicsr.degradation import pretrained_models
    from dml_basicsr.utils.checkpoint import CheckpointError

    marker = tmp_path / 'MARKER'
    (tmp_path / 'pretrained').mkdir()
    (tmp_path / 'pretrained' / 'models.yml').write_text(f'x: {hostile(CODE_TAGS[0], marker)}\n')
    monkeypatch.setattr(pretrained_models, '_folder', lambda: tmp_path / 'pretrained')
    with pytest.raises(CheckpointError, match='models.yml: .*Python object'):
        pretrained_models.pretrained_manifest()
    assert not marker.exists()


# ------------------------------------------------------------- 2. an output that destroys its input; 5. reuse

from test_robustness import save_dmlnet, write_pngs  # noqa: E402


def tree(root):
    """Everything under ``root`` without following links: {relative path: bytes, or '-> target' for a link}."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                found[rel] = '-> ' + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, 'rb') as f:
                    found[rel] = f.read()
            else:
                found[rel] = 'dir'
    return found


@pytest.fixture
def synth(tmp_path):
    save_dmlnet(tmp_path / 'dml_x2.pth')
    write_pngs(tmp_path / 'D' / 'HR')
    write_pngs(tmp_path / 'victim', names=('a.png', 'b.png', 'keep.png'), size=(30, 30))
    return tmp_path


def synthesize(cwd, *args, input='D/HR', output='out', checkpoint='dml_x2.pth'):
    return run_cli(['synthesize', '--input', input, '--output', output, '--checkpoint', checkpoint,
                    '--no-progress', *args], cwd=cwd)


def _link(link, target):
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)


LINK_LAYOUTS = {  # name: (make the hostile output layout in root, what the error line says)
    'out/HR -> victim': (lambda r: _link(r / 'out' / 'HR', r / 'victim'), 'out/HR is a symbolic link'),
    'out/LR -> victim': (lambda r: _link(r / 'out' / 'LR', r / 'victim'), 'out/LR is a symbolic link'),
    'out/HR -> relative victim': (lambda r: _link(r / 'out' / 'HR', '../victim'), 'out/HR is a symbolic link'),
    'record -> victim file': (lambda r: _link(r / 'out' / 'synthesis.yml', r / 'victim' / 'a.png'),
                              'synthesis.yml is a symbolic link'),
    'meta_info -> victim file': (lambda r: _link(r / 'out' / 'meta_info.txt', r / 'victim' / 'keep.png'),
                                 'meta_info.txt is a symbolic link'),
    'out -> the input': (lambda r: _link(r / 'out', r / 'D' / 'HR'), 'the same folder'),
    'out -> inside the input': (lambda r: (r / 'D' / 'HR' / 'sub').mkdir() or _link(r / 'out', r / 'D' / 'HR' / 'sub'),
                                'the output is inside the input'),
    'out -> above the input': (lambda r: _link(r / 'out', r / 'D'), "the input is the output's HR/ or LR/"),
}


@pytest.mark.parametrize('overwrite', [False, True])
@pytest.mark.parametrize('layout', sorted(LINK_LAYOUTS))
def test_synthesize_never_writes_or_deletes_through_a_link(synth, layout, overwrite):
    make, fragment = LINK_LAYOUTS[layout]
    make(synth)
    before = tree(synth)
    proc = synthesize(synth, *(['--overwrite'] if overwrite else []))
    assert_refused(proc, 'synthesize', fragment)
    assert tree(synth) == before  # the victim and the input byte-identical, nothing written anywhere


def test_synthesize_refuses_an_input_inside_the_outputs_written_folders(synth):
    write_pngs(synth / 'out' / 'LR' / 'src')
    _link(synth / 'src_link', synth / 'out' / 'LR' / 'src')
    before = tree(synth)
    for input_dir in ('out/LR/src', 'src_link', 'out/LR'):
        for flags in ([], ['--overwrite']):
            proc = synthesize(synth, *flags, input=input_dir)
            assert_refused(proc, 'synthesize', "the input is the output's HR/ or LR/")
    assert tree(synth) == before


def test_overwrite_removes_only_the_recorded_pairs_and_never_follows_a_link(synth):
    assert synthesize(synth).returncode == 0
    (synth / 'out' / 'HR' / 'notes.txt').write_text('mine')
    write_pngs(synth / 'out' / 'extra', names=('keep.png',))
    os.remove(synth / 'out' / 'HR' / 'a.png')
    os.symlink(synth / 'victim' / 'a.png', synth / 'out' / 'HR' / 'a.png')  # a pair file that is a link out
    victim = tree(synth / 'victim')
    proc = synthesize(synth, '--seed', '3', '--overwrite')
    assert proc.returncode == 0 and '2 written' in proc.stdout, proc.stderr
    assert tree(synth / 'victim') == victim
    assert not os.path.islink(synth / 'out' / 'HR' / 'a.png')  # the link was removed, a new pair written
    assert (synth / 'out' / 'HR' / 'notes.txt').read_text() == 'mine'
    assert (synth / 'out' / 'extra' / 'keep.png').exists()
    write_pngs(synth / 'out' / 'LR', names=('z.png',))  # an image that no record lists
    before = tree(synth)
    proc = synthesize(synth, '--seed', '4', '--overwrite')
    assert_refused(proc, 'synthesize', 'LR/z.png', 'deletes only the pairs a record lists')
    assert tree(synth) == before


@pytest.mark.parametrize('recorded', ['../../victim/keep', '{victim}/keep', '../HR/../../victim/keep'])
def test_overwrite_deletes_no_file_a_tampered_record_names_outside_the_pairs(synth, recorded):
    """A record is data someone else may have written: names in it that reach out of HR/ and LR/ delete nothing."""
    assert synthesize(synth).returncode == 0
    record_path = synth / 'out' / 'synthesis.yml'
    record = yaml.safe_load(record_path.read_text())
    record['input_files'][recorded.format(victim=synth / 'victim') + '.png'] = {'size': 1, 'mtime_ns': 1}
    record_path.write_text(yaml.safe_dump(record))
    victim, inputs = tree(synth / 'victim'), tree(synth / 'D')
    proc = synthesize(synth, '--seed', '3', '--overwrite')
    assert proc.returncode == 0, proc.stderr
    assert tree(synth / 'victim') == victim and tree(synth / 'D') == inputs


@pytest.mark.parametrize('tag', CODE_TAGS)
def test_synthesis_record_with_a_python_tag_runs_nothing(synth, tag):
    marker = synth / 'MARKER'
    (synth / 'out').mkdir()
    (synth / 'out' / 'synthesis.yml').write_text(f'seed: {hostile(tag, marker)}\n')
    before = tree(synth)
    for flags in ([], ['--overwrite']):
        assert_refused(synthesize(synth, *flags), 'synthesize', 'synthesis.yml', 'Python object')
    assert not marker.exists() and tree(synth) == before


@pytest.mark.parametrize('change, fragment', [
    (lambda d: write_pngs(d, names=('a.png', 'b.png'), size=(40, 48)), 'a.png size'),  # same names, other images
    (lambda d: write_pngs(d, names=('c.png',)), 'c.png is new'),
    (lambda d: os.remove(d / 'b.png'), 'b.png is gone'),
    (lambda d: os.utime(d / 'a.png', ns=(10**18, 10**18)), 'a.png mtime_ns'),
])
def test_synthesize_rerun_from_another_input_is_refused(synth, change, fragment):
    assert synthesize(synth).returncode == 0
    again = synthesize(synth)
    assert again.returncode == 0 and '0 written, 2 already there' in again.stdout  # the same input resumes
    made = tree(synth / 'out')
    shutil.copytree(synth / 'D' / 'HR', synth / 'other')
    change(synth / 'other')
    for input_dir in ('other',) if fragment != 'a.png mtime_ns' else ('other', 'D/HR'):
        if input_dir == 'D/HR':
            change(synth / 'D' / 'HR')
        proc = synthesize(synth, input=input_dir)
        assert_refused(proc, 'synthesize', 'made from another input', fragment)
        assert tree(synth / 'out') == made


# ---------------------------------------------------------------------------------- 3. one writer per output


def test_second_writer_of_an_output_is_refused(synth):
    from dml_basicsr.utils.output_folder import output_lock

    with output_lock(str(synth / 'out'), 'basicsr synthesize'):
        before = tree(synth)
        proc = synthesize(synth)
        assert_refused(proc, 'synthesize', 'out is being written by another basicsr synthesize')
        assert tree(synth) == before
    assert synthesize(synth).returncode == 0  # released at the end of the block


def test_a_killed_writer_leaves_no_stuck_lock(synth):
    (synth / 'out').mkdir()
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\nsys.path.insert(0, sys.argv[1])\n'
         'import importlib.util as u\nspec = u.spec_from_file_location("of", sys.argv[1] + "/dml_basicsr/utils/'
         'output_folder.py")\nof = u.module_from_spec(spec); spec.loader.exec_module(of)\n'
         'with of.output_lock(sys.argv[2], "basicsr synthesize"):\n    print("locked", flush=True)\n'
         '    time.sleep(120)\n', str(PROJECT_ROOT), str(synth / 'out')], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        assert_refused(synthesize(synth), 'synthesize', 'being written by another')
    finally:
        holder.kill()  # SIGKILL: no clean-up runs in the holder
        holder.wait()
    proc = synthesize(synth)
    assert proc.returncode == 0 and '2 written' in proc.stdout, proc.stderr


# ------------------------------------------------------------------------------ 4. a failure that exits 0

from test_robustness import last_error_line, tiny_run  # noqa: E402

SAVE_FAILURES = {  # the file whose save fails: (errno, the newest intact one the line names, files left after)
    'net_g_4.pth': (errno.ENOSPC, 'net_g_2.pth', (['net_g_2.pth'], ['2.state'])),
    '4.state': (errno.ENOSPC, '2.state', (['net_g_2.pth', 'net_g_4.pth'], ['2.state'])),
    'net_g_latest.pth': (errno.EROFS, 'net_g_4.pth', (['net_g_2.pth', 'net_g_4.pth'], ['2.state', '4.state'])),
    'net_g_2.pth': (errno.EDQUOT, None, ([], [])),
}


@pytest.mark.parametrize('failing', SAVE_FAILURES)
def test_a_failed_save_stops_the_training_naming_the_file(tmp_path, monkeypatch, failing):
    from dml_basicsr.utils import training_saves

    code, intact, (models_left, states_left) = SAVE_FAILURES[failing]
    real_save = torch.save

    def save(obj, f, *args, **kwargs):  # the atomic writer's temporary file is '.partial-<name>.<pid>.tmp'
        if os.path.basename(f.name).startswith(f'.partial-{failing}.'):
            f.write(b'half a file')
            raise OSError(code, os.strerror(code))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', save)
    monkeypatch.setattr(training_saves, 'SAVE_RETRY_DELAY_S', 0)
    proc = run_cli(['train', '-opt', str(tiny_run(tmp_path, name='full'))], cwd=tmp_path)
    line = last_error_line(proc, 'train')
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert 'cannot save the' in line and failing in line and os.strerror(code) in line
    assert (f'the newest intact one, {os.path.join(tmp_path, "experiments", "full")}' in line and intact in line
            if intact else 'no earlier model was saved' in line), line
    assert 'Just ignore it' not in proc.stderr
    exp = tmp_path / 'experiments' / 'full'
    assert sorted(os.listdir(exp / 'models')) == models_left
    assert sorted(os.listdir(exp / 'training_states')) == states_left
    for name in models_left:
        load_state_dict(str(exp / 'models' / name))  # whole, not a partial file


def test_training_stopped_by_a_failed_state_save_resumes(tmp_path, monkeypatch):
    from dml_basicsr.utils import training_saves

    real_save = torch.save
    failures = iter([True])  # only the first save of 4.state fails: the disk is freed afterwards

    def save(obj, f, *args, **kwargs):
        if os.path.basename(f.name).startswith('.partial-4.state.') and next(failures, False):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(training_saves, 'SAVE_TRIES', 1)
    monkeypatch.setattr(torch, 'save', save)
    opt_file = tiny_run(tmp_path, name='freed')
    assert run_cli(['train', '-opt', str(opt_file)], cwd=tmp_path).returncode == 1
    proc = run_cli(['train', '-opt', str(opt_file), '--auto_resume'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    states = tmp_path / 'experiments' / 'freed' / 'training_states'
    assert sorted(os.listdir(states)) == ['2.state', '4.state']
    load_state_dict(str(tmp_path / 'experiments' / 'freed' / 'models' / 'net_g_latest.pth'))


# ------------------------------------------------------------------- 5. a batch larger than the dataset

def realsr_train_options(root, **train):
    """The tiny DML options trained on a RealSR layout of 3 scenes x 2 cameras (6 pairs) at x2."""
    make_realsr(root / 'RealSR', scale=2, size=(48, 48))
    opt = tiny_dml_options('bigbatch')
    opt['datasets']['train'] = dict(dict(name='r', type='RealSRDataset', dataroot=str(root / 'RealSR'), gt_size=16,
                                         num_worker_per_gpu=0, batch_size_per_gpu=2, color='y'), **train)
    return opt


@pytest.mark.parametrize('dataset, batch, ratio, world, per_epoch', [
    ('lens', 9, 4, None, 8),  # 2 embedded photos x 4
    ('lens', 3, 1, None, 2),
    ('lens', 5, 4, '2', 4),  # 8 items over 2 processes
    ('realsr', 7, 1, None, 6),
    ('syndml', 4, 1, None, 2),
])
def test_a_batch_larger_than_an_epoch_is_refused_up_front(tmp_path, monkeypatch, dataset, batch, ratio, world,
                                                        per_epoch):
    if world:
        monkeypatch.setenv('WORLD_SIZE', world)
    if dataset == 'realsr':
        opt = realsr_train_options(tmp_path, batch_size_per_gpu=batch, dataset_enlarge_ratio=ratio)
    else:
        opt = tiny_dml_options('bigbatch')
        if dataset == 'syndml':
            opt['model_type'] = 'OnlineSynthesisSRModel'
        opt['datasets']['train'].update(batch_size_per_gpu=batch, dataset_enlarge_ratio=ratio)
        if dataset == 'syndml':
            opt['datasets']['train'] = dict(name='s', type='OnlineSynthesisDataset', images=['camera', 'brick'],
                                            gt_size=32, color='y', batch_size_per_gpu=batch, dataset_enlarge_ratio=ratio,
                                            num_worker_per_gpu=0)
            opt['degradation'] = {'fixed_kernel': {'kernel': 'gaussian', 'sigma': 1.0, 'scale': 2}}
            opt['network_g'] = {'type': 'VDSR', 'num_in_ch': 1, 'num_feat': 8, 'num_conv': 3, 'upscale': 2}
    expect_option_error(tmp_path, opt, 'datasets.train: batch_size_per_gpu', f'larger than the {per_epoch} items',
                        '0 iterations')


def test_a_batch_of_exactly_one_epoch_trains(tmp_path):
    opt = realsr_train_options(tmp_path, batch_size_per_gpu=6)
    opt['train']['total_iter'] = 2
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'opt.yml', opt))], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    load_state_dict(str(tmp_path / 'experiments' / 'bigbatch' / 'models' / 'net_g_2.pth'))


# ------------------------------------------------------------------------------ 7. numbers that make garbage

BAD_SIGMAS = [float('nan'), float('inf'), -1.0, [5.0, 1.0], [float('nan'), 2.0], [1.0, float('inf')], [1.0, 2.0, 3.0],
              'five', True]


@pytest.mark.parametrize('sigma', BAD_SIGMAS, ids=repr)
def test_a_bad_noise_sigma_is_refused_when_built_in_every_interface(sigma):
    from dml_basicsr.degradation import DMLDegradation
    from dml_basicsr.integrations.mmengine import DMLDegrade

    net = DMLNet(num_basis=2, kernel_size=5, scale=2, num_feat=8)
    for build in (lambda: DMLDegradation(net, noise_sigma=sigma),
                  lambda: DMLDegradation.fixed_kernel(sigma=1.0, noise_sigma=sigma),
                  lambda: DMLDegradation.from_options({'pretrained': 'city100-nikon-x2', 'noise_sigma': sigma}),
                  lambda: DMLDegrade(pretrained='city100-nikon-x2', noise_sigma=sigma)):
        with pytest.raises(ValueError, match='noise_sigma must be a finite number >= 0'):
            build()


@pytest.mark.parametrize('sigma', ['nan', 'inf', '-inf', '-1'])
def test_synthesize_refuses_a_bad_noise_sigma_before_writing(synth, sigma):
    before = tree(synth)
    assert_refused(synthesize(synth, f'--noise-sigma={sigma}'), 'synthesize', 'noise_sigma must be a finite number')
    assert tree(synth) == before


@pytest.mark.parametrize('section, fragment', [
    ({'pretrained': 'city100-nikon-x2', 'noise_sigma': float('nan')}, 'degradation.noise_sigma must be a finite'),
    ({'pretrained': 'city100-nikon-x2', 'noise_sigma': [3.0, float('inf')]}, 'degradation.noise_sigma must be'),
    ({'pretrained': 'city100-nikon-x2', 'clamp': 'yes'}, 'degradation.clamp must be true or false'),
    ({'fixed_kernel': {'kernel': 'gaussian', 'sigma': 0, 'scale': 2}}, 'sigma must be a finite number > 0'),
    ({'fixed_kernel': {'kernel': 'gaussian', 'sigma': -1.0, 'scale': 2}}, 'sigma must be a finite number > 0'),
    ({'fixed_kernel': {'kernel': 'gaussian', 'sigma': float('nan'), 'scale': 2}}, 'sigma must be a finite number'),
    ({'fixed_kernel': {'kernel': 'gaussian', 'sigma': 1.0, 'scale': 2, 'kernel_size': 4}},
     'kernel_size must be an odd integer'),
    ({'fixed_kernel': {'kernel': 'bicubic', 'scale': 5}}, 'scale must be 1, 2, 3 or 4'),
    ({'fixed_kernel': {'kernel': 'bicubic', 'scale': 2, 'noise_sigma': 1}}, 'noise_sigma'),
])
def test_option_file_numbers_that_make_garbage_are_refused_up_front(tmp_path, section, fragment):
    opt = tiny_dml_options('garbage')
    opt['model_type'] = 'OnlineSynthesisSRModel'
    opt['datasets']['train'] = dict(name='s', type='OnlineSynthesisDataset', images=['camera', 'brick'], gt_size=32,
                                    color='y', batch_size_per_gpu=2, num_worker_per_gpu=0)
    opt['degradation'] = section
    opt['network_g'] = {'type': 'VDSR', 'num_in_ch': 1, 'num_feat': 8, 'num_conv': 3, 'upscale': 2}
    expect_option_error(tmp_path, opt, fragment)


@pytest.mark.parametrize('kwargs, fragment', [
    (dict(kernel='gaussian', sigma=0), 'sigma must be a finite number > 0'),
    (dict(kernel='gaussian', sigma=float('inf')), 'sigma must be a finite number > 0'),
    (dict(kernel='gaussian', sigma='1'), 'sigma must be a finite number > 0'),
    (dict(kernel='bicubic', scale=2.0), 'scale must be 1, 2, 3 or 4'),
    (dict(kernel='bicubic', kernel_size=0), 'kernel_size must be an odd integer'),
])
def test_fixed_kernel_net_refuses_what_makes_no_kernel(kwargs, fragment):
    from dml_basicsr.archs import FixedKernelNet

    with pytest.raises(ValueError, match=fragment):
        FixedKernelNet(**kwargs)


# ------------------------------------------------------- 10. DMLDegradation: shared weights and its inputs

def test_a_low_precision_call_never_changes_the_shared_network():
    from dml_basicsr.degradation import DMLDegradation

    torch.manual_seed(0)
    net = DMLNet(num_basis=3, kernel_size=5, scale=2, num_feat=8)
    deg = DMLDegradation(net, noise_sigma=0)
    hr = torch.rand(1, 1, 24, 20)
    before = deg(hr)
    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        out = deg(hr.to(dtype))
        assert out.dtype == dtype
        assert all(p.dtype == torch.float32 for p in net.parameters())
        torch.testing.assert_close(out.float(), before, atol=1e-2, rtol=0)
    assert torch.equal(deg(hr), before)


@pytest.mark.parametrize('hr, fragment', [
    (torch.randint(0, 255, (1, 1, 16, 16), dtype=torch.uint8), 'must be floating point'),
    (torch.rand(1, 16, 16), r'must be a \(B, C, H, W\) tensor, got \(1, 16, 16\)'),
    (torch.rand(1, 1, 16, 16) * 255, r'in \[0, 1\], got .*0-255 images'),
    (torch.full((1, 1, 16, 16), float('nan')), r'finite and in \[0, 1\]'),
    (torch.rand(1, 1, 16, 16) - 2, r'finite and in \[0, 1\]'),
    (torch.rand(0, 1, 16, 16), 'input is empty'),
    (np.zeros((1, 1, 16, 16), np.float32), r'must be a \(B, C, H, W\) tensor, got ndarray'),
])
def test_degradation_refuses_inputs_it_would_make_garbage_of(hr, fragment):
    from dml_basicsr.degradation import DMLDegradation

    deg = DMLDegradation(DMLNet(num_basis=2, kernel_size=5, scale=2, num_feat=8))
    with pytest.raises(ValueError, match=fragment):
        deg(hr)


# ------------------------------------------------------------------------ 8. one decoder, one error

def png_declaring(width, height, body=b'\x00' * 64):
    """A small PNG file whose header declares ``width`` x ``height`` RGB pixels (its data is far too short)."""
    def chunk(kind, data):
        return len(data).to_bytes(4, 'big') + kind + data + zlib.crc32(kind + data).to_bytes(4, 'big')

    ihdr = width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes([8, 2, 0, 0, 0])
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(body)) + chunk(b'IEND', b'')


def jpeg_declaring(width, height):
    """A JPEG file (a real one) whose start-of-frame is rewritten to declare ``width`` x ``height``."""
    ok, encoded = cv2.imencode('.jpg', np.full((8, 8, 3), 128, np.uint8))
    data = bytearray(encoded.tobytes())
    sof = data.index(b'\xff\xc0')
    data[sof + 5:sof + 9] = height.to_bytes(2, 'big') + width.to_bytes(2, 'big')
    return bytes(data)


HOSTILE_IMAGES = {  # file name: (bytes, what the one error line says)
    'empty.png': (b'', 'empty file (0 bytes)'),
    'bomb.png': (png_declaring(60000, 60000), 'declares a 60000x60000 image (3600 megapixels)'),
    'wide.png': (png_declaring(1 << 20, 1024), 'declares a 1048576x1024 image'),
    'none.png': (png_declaring(0, 10), 'declares a 0x10 image (no pixels)'),
    'bomb.jpg': (jpeg_declaring(65000, 65000), 'declares a 65000x65000 image'),
    'truncated.png': (png_declaring(64, 64)[:60], 'truncated PNG file (60 bytes, no end marker)'),
    'truncated.jpg': (jpeg_declaring(8, 8)[:-40], 'truncated JPEG file'),
    'text.jpg': (b'not an image at all\n' * 20, 'cannot decode image'),
}


@pytest.mark.parametrize('name', HOSTILE_IMAGES)
def test_decoding_a_hostile_image_is_one_dataset_error(tmp_path, name):
    from dml_basicsr.data.errors import DatasetError
    from dml_basicsr.data.image_io import read_raw

    data, fragment = HOSTILE_IMAGES[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=re.escape(f'{path}: ') + '.*' + re.escape(fragment)):
        read_raw(str(path))


@pytest.mark.parametrize('name', ['empty.png', 'bomb.png', 'bomb.jpg', 'text.jpg'])
def test_synthesize_refuses_a_hostile_image_before_writing_anything(synth, name):
    data, fragment = HOSTILE_IMAGES[name]
    (synth / 'D' / 'HR' / name).write_bytes(data)
    before = tree(synth)
    line = assert_refused(synthesize(synth), 'synthesize', name)
    assert fragment in line or 'cannot decode' in line
    if name != 'text.jpg':  # what the header tells is refused before anything is written
        assert tree(synth) == before


@pytest.mark.parametrize('name', ['empty.png', 'bomb.png', 'truncated.png', 'truncated.jpg'])
def test_visualize_refuses_a_hostile_image_with_one_line(tmp_path, name):
    data, fragment = HOSTILE_IMAGES[name]
    (tmp_path / name).write_bytes(data)
    save_dmlnet(tmp_path / 'dml.pth')
    proc = run_cli(['visualize', '--image', str(tmp_path / name), '--output', 'pics', '--dml', 'dml.pth'],
                   cwd=tmp_path)
    line = assert_refused(proc, 'visualize', name, fragment)
    assert not (tmp_path / 'pics').exists(), line


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


# ------------------------------------------------- 6. option values checked before BasicSR writes anything

def _drop(opt, *keys):
    section = opt
    for key in keys[:-1]:
        section = section[key]
    del section[keys[-1]]


def _set(opt, keys, value):
    section = opt
    for key in keys[:-1]:
        section = section[key]
    section[keys[-1]] = value


OPTION_MISTAKES = [  # (change of the tiny DML options, what the line says)
    (lambda o: _drop(o, 'num_gpu'), 'num_gpu is missing'),
    (lambda o: _set(o, ['num_gpu'], 'two'), 'num_gpu must be auto or an integer >= 0'),
    (lambda o: _set(o, ['num_gpu'], 1), 'num_gpu 1, but this machine has 0 CUDA device(s)'),
    (lambda o: _set(o, ['manual_seed'], 'abc'), "manual_seed must be an integer >= 0 (or absent: a random one), got 'abc'"),
    (lambda o: _set(o, ['datasets', 'train', 'batch_size_per_gpu'], 2.0), 'batch_size_per_gpu must be an integer, got 2.0'),
    (lambda o: _set(o, ['train', 'optim_g', 'type'], 'AdamW'), "train.optim_g.type 'AdamW' is not a registered "
                                                               "optimizer of BasicSR"),
    (lambda o: _drop(o, 'datasets'), 'datasets is missing'),
    (lambda o: _set(o, ['datasets'], ['train']), 'datasets is not a section'),
    (lambda o: _drop(o, 'datasets', 'train'), 'datasets has no train section'),
    (lambda o: _drop(o, 'network_g'), 'network_g is missing'),
    (lambda o: _drop(o, 'train'), 'train is missing'),
    (lambda o: _drop(o, 'logger'), 'logger is missing'),
    (lambda o: _set(o, ['path'], 'experiments'), 'path must be a section'),
    (lambda o: _set(o, ['datasets', 'train', 'gt_size'], 'abc'), "datasets.train.gt_size must be an integer >= 1, got "
                                                                 "'abc' (a string"),
    (lambda o: _set(o, ['datasets', 'train', 'gt_size'], 0), 'datasets.train.gt_size must be an integer >= 1'),
    (lambda o: _set(o, ['datasets', 'train', 'gt_size'], 33.5), 'datasets.train.gt_size must be an integer'),
    (lambda o: _set(o, ['train', 'total_iter'], 'four'), "train.total_iter must be an integer >= 1, got 'four'"),
    (lambda o: _set(o, ['train', 'total_iter'], 0), 'train.total_iter must be an integer >= 1'),
    (lambda o: _drop(o, 'train', 'total_iter'), 'train.total_iter is missing'),
    (lambda o: _set(o, ['train', 'optim_g', 'lr'], 'fast'), "train.optim_g.lr must be a finite number > 0, got 'fast' "
                                                            '(a string'),
    (lambda o: _set(o, ['train', 'optim_g', 'lr'], -1.0), 'train.optim_g.lr must be a finite number > 0'),
    (lambda o: _set(o, ['train', 'optim_g', 'lr'], float('nan')), 'train.optim_g.lr must be a finite number > 0'),
    (lambda o: _set(o, ['train', 'optim_g', 'type'], 'Adamm'), "train.optim_g.type 'Adamm' is not a registered "
                                                               "optimizer of BasicSR; did you mean 'Adam'"),
    (lambda o: _set(o, ['train', 'scheduler', 'type'], 'StepLR'), "train.scheduler.type 'StepLR' is not a registered"),
    (lambda o: _set(o, ['train', 'pixel_opt', 'type'], 'MSELos'), "train.pixel_opt.type 'MSELos' is not a registered "
                                                                  "loss; did you mean 'MSELoss'"),
    (lambda o: _set(o, ['val', 'val_freq'], 0), 'val.val_freq must be an integer >= 1'),
    (lambda o: _set(o, ['logger', 'print_freq'], 0), 'logger.print_freq must be an integer >= 1'),
    (lambda o: _set(o, ['logger', 'save_checkpoint_freq'], -5), 'logger.save_checkpoint_freq must be an integer >= 1'),
    (lambda o: _set(o, ['datasets', 'train', 'num_worker_per_gpu'], -1), 'num_worker_per_gpu must be an integer >= 0'),
    (lambda o: _set(o, ['datasets', 'train', 'batch_size_per_gpu'], 0), 'batch_size_per_gpu must be an integer >= 1'),
    (lambda o: _set(o, ['datasets', 'train', 'dataset_enlarge_ratio'], 0), 'dataset_enlarge_ratio must be an integer'),
    (lambda o: _set(o, ['model_type'], 'DMLModle'), "model_type 'DMLModle' is not a registered model; did you mean "
                                                    "'DMLModel'"),
    (lambda o: _set(o, ['val', 'metrics', 'psnr'], {'type': 'calculate_psnr', 'crop_boder': 4}),
     "val.metrics.psnr: calculate_psnr takes no option 'crop_boder'; did you mean 'crop_border'"),
    (lambda o: _set(o, ['val', 'metrics', 'psnr'], {'type': 'calculate_psnr'}), 'calculate_psnr needs crop_border'),
    (lambda o: _set(o, ['val', 'metrics', 'psnr'], {'type': 'calculate_psnt', 'crop_border': 0}),
     "val.metrics.psnr.type 'calculate_psnt' is not a registered metric; did you mean 'calculate_psnr'"),
    (lambda o: _set(o, ['val', 'metrics', 'psnr'], {'type': 'calculate_psnr', 'crop_border': 0, 'better': 'more'}),
     'val.metrics.psnr.better must be higher or lower'),
    (lambda o: _set(o, ['network_g', 'scale'], 3), 'network_g.scale 3, but the data are x2'),
    (lambda o: _set(o, ['network_g', 'num_in_ch'], 3), 'network_g.num_in_ch 3, but datasets.train gives 1-channel'),
    (lambda o: _set(o, ['datasets', 'val', 'color'], 'rgb'), 'network_g.num_in_ch 1, but datasets.val gives 3-channel'),
]


@pytest.mark.parametrize('change, fragment', OPTION_MISTAKES, ids=[f for _, f in OPTION_MISTAKES])
def test_option_value_mistakes_are_one_line_before_anything_is_written(tmp_path, change, fragment):
    opt = tiny_dml_options('mistake')
    change(opt)
    expect_option_error(tmp_path, opt, fragment)


@pytest.mark.parametrize('changes, fragment', [
    (dict(gt_size=15), 'gt_size must be a positive multiple of the scale 2, got 15'),
    (dict(gt_size=64), 'gt_size 64 is larger than the HR image'),
])
def test_paired_training_patches_that_cannot_be_cut_are_refused_up_front(tmp_path, changes, fragment):
    opt = realsr_train_options(tmp_path, **changes)
    expect_option_error(tmp_path, opt, fragment)


def test_basicsr_style_float_frequencies_and_exponent_rates_are_accepted(tmp_path):
    opt = tiny_dml_options('floats')
    opt['train']['total_iter'] = 2.0
    opt['val']['val_freq'] = 2.0
    opt['logger']['save_checkpoint_freq'] = 2.0
    text = yaml.safe_dump(opt, sort_keys=False).replace("lr: 0.001", "lr: 1e-3")
    assert 'lr: 1e-3' in text
    (tmp_path / 'opt.yml').write_text(text)
    proc = run_cli(['train', '-opt', str(tmp_path / 'opt.yml')], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ------------------------------------------------------------------------ 9. filesystem failures as one line

def one_line(proc, command, status):
    line = one_error_line(proc, command)
    assert proc.returncode == status, proc.stderr[-2000:]
    return line


@pytest.mark.parametrize('code', [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_synthesize_that_cannot_write_is_one_line(synth, monkeypatch, code):
    from dml_basicsr.degradation import folder_synthesis

    def refuse(path, *args, **kwargs):
        raise OSError(code, os.strerror(code), path)

    monkeypatch.setattr(folder_synthesis, 'write_png_atomic', refuse)
    line = one_line(synthesize(synth), 'synthesize', 1)
    assert os.strerror(code) in line and os.path.join('out', 'HR') in line


@pytest.mark.parametrize('command', ['synthesize', 'visualize'])
def test_an_output_that_is_a_file_is_one_line(synth, command):
    (synth / 'out').write_text('a file, not a folder')
    if command == 'synthesize':
        proc = synthesize(synth)
    else:
        proc = run_cli(['visualize', '--image', 'embedded:camera', '--output', 'out', '--dml', 'dml_x2.pth'],
                       cwd=synth)
    line = one_error_line(proc, command)
    assert proc.returncode in (1, 2) and 'out' in line
    assert (synth / 'out').read_text() == 'a file, not a folder'


@pytest.mark.parametrize('content, fragment', [
    (b'name: caf\xe9\n', 'UTF-8'),
    (b'\xff\xfe\x00\x00', 'UTF-8'),
])
def test_an_option_file_that_is_not_utf8_is_one_line(tmp_path, content, fragment):
    (tmp_path / 'opt.yml').write_bytes(content)
    line = one_line(run_cli(['train', '-opt', str(tmp_path / 'opt.yml')], cwd=tmp_path), 'train', 2)
    assert 'opt.yml' in line and fragment in line
    assert not (tmp_path / 'experiments').exists()


@pytest.mark.parametrize('entry, fragment', [
    ('train:total_iterr=5', "adds the new key 'total_iterr', close to the existing 'total_iter'"),
    ('logger:print_frq=1', "close to the existing 'print_freq'"),
    ('datasets:train:gt_sise=16', "close to the existing 'gt_size'"),
    ('trian:total_iter=5', 'there is no section trian'),
])
def test_force_yml_typos_are_one_line(tmp_path, entry, fragment):
    opt_file = write_yaml(tmp_path / 'opt.yml', tiny_dml_options('typo'))
    line = one_line(run_cli(['train', '-opt', str(opt_file), '--force_yml', entry], cwd=tmp_path), 'train', 2)
    assert fragment in line
    assert not (tmp_path / 'experiments').exists()


def test_force_yml_may_still_add_a_key_unlike_any_other(tmp_path):
    opt_file = write_yaml(tmp_path / 'opt.yml', tiny_dml_options('added', total_iter=2))
    proc = run_cli(['train', '-opt', str(opt_file), '--force_yml', 'train:ema_decay=0'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_resuming_with_another_network_is_one_line(tmp_path):
    opt_file = write_yaml(tmp_path / 'opt.yml', tiny_dml_options('resumed'))
    assert run_cli(['train', '-opt', str(opt_file)], cwd=tmp_path).returncode == 0
    before = tree(tmp_path / 'experiments')
    proc = run_cli(['train', '-opt', str(opt_file), '--auto_resume', '--force_yml', 'network_g:num_feat=16',
                    'train:total_iter=6'], cwd=tmp_path)
    line = one_line(proc, 'train', 2)
    assert '--auto_resume: experiments/resumed was trained with another network_g' in line and 'net_g_4.pth' in line
    assert tree(tmp_path / 'experiments') == before


def test_pretrained_weights_of_another_scale_are_one_line(tmp_path):
    save_dmlnet(tmp_path / 'x4.pth', scale=4)
    opt = tiny_dml_options('wrongscale')
    opt['network_g'].update(num_basis=3, kernel_size=7, num_feat=8)
    opt['path'] = {'pretrain_network_g': str(tmp_path / 'x4.pth'), 'strict_load_g': True}
    expect_option_error(tmp_path, opt, 'x4.pth: does not fit DMLNet', 'trained for scale 4')


@pytest.fixture
def damaged_install(tmp_path, monkeypatch):
    """The shipped models copied to tmp_path/pretrained, with pretrained_models reading them there."""
    from dml_basicsr.degradation import pretrained_models

    folder = tmp_path / 'pretrained'
    shutil.copytree(pretrained_models._folder(), folder)
    monkeypatch.setattr(pretrained_models, '_folder', lambda: folder)
    return folder


@pytest.mark.parametrize('damage, fragment', [
    (lambda f: (f / 'city100_nikon_x2.pth').unlink(), "weights of the shipped model 'city100-nikon-x2' are missing"),
    (lambda f: (f / 'models.yml').unlink(), 'the list of shipped models is missing'),
    (lambda f: (f / 'models.yml').write_text('- just\n- a list\n'), 'not a list of shipped models'),
    (lambda f: (f / 'models.yml').write_text('city100-nikon-x2: {file: 3}\n'), 'not a list of shipped models'),
    (lambda f: (f / 'models.yml').write_text('city100-nikon-x2: [unclosed\n'), 'models.yml'),
])
def test_a_damaged_install_is_one_line(tmp_path, damaged_install, damage, fragment):
    from dml_basicsr.degradation import DMLDegradation
    from dml_basicsr.utils.checkpoint import CheckpointError

    assert (damaged_install / 'city100_nikon_x2.pth').is_file()
    damage(damaged_install)
    with pytest.raises(CheckpointError, match=re.escape(fragment)):
        DMLDegradation.pretrained('city100-nikon-x2')
    opt = tiny_dml_options('damaged')
    opt['model_type'] = 'OnlineSynthesisSRModel'
    opt['datasets']['train'] = dict(name='s', type='OnlineSynthesisDataset', images=['camera', 'brick'], gt_size=32,
                                    color='y', batch_size_per_gpu=2, num_worker_per_gpu=0)
    opt['degradation'] = {'pretrained': 'city100-nikon-x2'}
    opt['network_g'] = {'type': 'VDSR', 'num_in_ch': 1, 'num_feat': 8, 'num_conv': 3, 'upscale': 2}
    expect_option_error(tmp_path, opt, fragment)


def test_a_corrupted_lmdb_is_one_line(tmp_path):
    opt = realsr_train_options(tmp_path)
    prep = run_cli(['prepare', '-opt', str(write_yaml(tmp_path / 'prep.yml', opt)), '--output', 'lmdb',
                    '--crop-size', '16', '--step', '16', '--no-progress'], cwd=tmp_path)
    assert prep.returncode == 0, prep.stderr[-2000:]
    data = tmp_path / 'lmdb' / 'HR.lmdb' / 'data.mdb'
    data.write_bytes(b'\x00' * 64)
    opt['datasets']['train'] = dict(opt['datasets']['train'], dataroot=str(tmp_path / 'lmdb'),
                                    io_backend={'type': 'lmdb'})
    opt['train']['total_iter'] = 2
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'opt.yml', opt))], cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert lines[-1].startswith('basicsr train: error: ') and 'LMDB' in lines[-1] and 'prepare it again' in lines[-1]


# ------------------------------------------------------------------------------------- 10. the rest

@pytest.mark.parametrize('component', ['DMLDegrade', 'DMLDataPreprocessor'])
def test_mmengine_components_refuse_unknown_options_with_a_suggestion(component):
    from dml_basicsr.integrations import mmengine as integration

    registry = integration.TRANSFORMS if component == 'DMLDegrade' else integration.MODELS
    with pytest.raises(ValueError, match=f"{component}: unknown option 'noise_sigam'; did you mean 'noise_sigma'"):
        registry.build(dict(type=component, pretrained='city100-nikon-x2', noise_sigam=5))
    with pytest.raises(ValueError, match=f"{component}: unknown option 'real_esrgan'"):
        registry.build(dict(type=component, real_esrgan={'scale': 4}))


@pytest.mark.parametrize('grid', ['100', '17'])
def test_visualize_grid_is_bounded_by_the_image(tmp_path, grid):
    save_dmlnet(tmp_path / 'dml.pth')
    proc = run_cli(['visualize', '--image', 'embedded:camera', '--output', 'pics', '--dml', 'dml.pth', '--grid',
                    grid], cwd=tmp_path)
    assert_refused(proc, 'visualize', f'--grid {grid}: at most')
    assert not (tmp_path / 'pics').exists()


@pytest.mark.parametrize('args, fragment', [
    (['--iters', '0'], '--iters must be >= 1'),
    (['--batch-size', '-2'], '--batch-size must be >= 1'),
    (['--patch', '47'], '--patch must be a multiple'),
    (['--lr', 'nan'], '--lr must be a finite number > 0'),
    (['--noise-sigma', 'inf'], '--noise-sigma must be a finite number >= 0'),
])
def test_the_plain_pytorch_example_validates_its_arguments(tmp_path, capsys, args, fragment):
    sys.path.insert(0, str(PROJECT_ROOT / 'examples'))
    try:
        import train_plain_pytorch
    finally:
        sys.path.remove(str(PROJECT_ROOT / 'examples'))
    with pytest.raises(SystemExit) as exit_info:
        train_plain_pytorch.main(['--out', str(tmp_path / 'out'), *args])
    assert exit_info.value.code == 2 and fragment in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('command', ['train', 'test'])
def test_a_second_run_of_one_name_is_refused_while_the_first_runs(tmp_path, command):
    from dml_basicsr.utils.output_folder import run_lock

    opt = tiny_dml_options('busy', total_iter=2)
    if command == 'test':
        save_dmlnet(tmp_path / 'dml.pth')
        opt['path'] = {'pretrain_network_g': str(tmp_path / 'dml.pth'), 'strict_load_g': True}
        opt['network_g'].update(num_basis=3, kernel_size=7, num_feat=8)
        del opt['datasets']['train']
    opt_file = write_yaml(tmp_path / 'opt.yml', opt)
    parent = 'experiments' if command == 'train' else 'results'
    with run_lock(str(tmp_path / parent), 'busy', f'basicsr {command}'):
        proc = run_cli([command, '-opt', str(opt_file)], cwd=tmp_path)
        assert_refused(proc, command, f'{parent}/busy is being written by another basicsr {command} now')
        assert sorted(os.listdir(tmp_path / parent)) == ['.busy.lock']
    proc = run_cli([command, '-opt', str(opt_file)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
