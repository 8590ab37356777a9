"""dml_basicsr.commands.visualize (``basicsr visualize``): an experiment copy or recorded ``--force_yml`` runs no code,
``--grid`` is bounded by the image, and a hostile image is one line; nothing is written then."""
import os

import pytest
import torch
import yaml

from conftest import CODE_TAGS, HOSTILE_IMAGES, assert_refused, hostile, run_cli, save_dmlnet
from dml_basicsr.archs import DMLNet


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


@pytest.mark.parametrize('grid', ['100', '17'])
def test_visualize_grid_is_bounded_by_the_image(tmp_path, grid):
    save_dmlnet(tmp_path / 'dml.pth')
    proc = run_cli(['visualize', '--image', 'embedded:camera', '--output', 'pics', '--dml', 'dml.pth', '--grid',
                    grid], cwd=tmp_path)
    assert_refused(proc, 'visualize', f'--grid {grid}: at most')
    assert not (tmp_path / 'pics').exists()


@pytest.mark.parametrize('name', ['empty.png', 'bomb.png', 'truncated.png', 'truncated.jpg'])
def test_visualize_refuses_a_hostile_image_with_one_line(tmp_path, name):
    data, fragment = HOSTILE_IMAGES[name]
    (tmp_path / name).write_bytes(data)
    save_dmlnet(tmp_path / 'dml.pth')
    proc = run_cli(['visualize', '--image', str(tmp_path / name), '--output', 'pics', '--dml', 'dml.pth'],
                   cwd=tmp_path)
    line = assert_refused(proc, 'visualize', name, fragment)
    assert not (tmp_path / 'pics').exists(), line


def test_the_files_an_option_file_model_reads_are_inputs(tmp_path):
    """An option file's path.pretrain_network_g is read too: an output folder holding it is refused."""
    import argparse
    from dml_basicsr.commands.visualize import input_paths
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'w.pth').write_bytes(b'weights')
    (tmp_path / 'm.yml').write_text(f'path:\n  pretrain_network_g: {tmp_path / "out" / "w.pth"}\n')
    args = argparse.Namespace(image='embedded:chelsea', lr=None, hr=None, dml=None, kpn=None,
                              sr=[f'x={tmp_path / "m.yml"}'])
    assert str(tmp_path / 'out' / 'w.pth') in input_paths(args)
    proc = run_cli(['visualize', '--image', 'embedded:chelsea', '--output', 'out', '--sr', 'x=m.yml'], cwd=tmp_path)
    assert_refused(proc, 'visualize', 'holds the input')
    assert os.listdir(tmp_path / 'out') == ['w.pth']
