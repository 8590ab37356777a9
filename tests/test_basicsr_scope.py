"""dml_basicsr.commands.basicsr_scope: ``import dml_basicsr`` registers components and changes nothing of BasicSR;
what our ``basicsr train``/``test`` needs of BasicSR is installed for its run and removed after it."""
import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np

from conftest import PROJECT_ROOT, run_cli, tiny_dml_options, write_yaml
from dml_basicsr.cli import build_parser
from dml_basicsr.commands.basicsr_scope import basicsr_run, replacements


def owners_of_replaced_attributes():
    """{'owner.name': module of what is there now} for every attribute our command replaces during its run."""
    args = build_parser().parse_args(['train', '-opt', 'x.yml'])
    return {f'{getattr(owner, "__name__", owner)}.{name}': vars(owner)[name].__module__
            for owner, name, _ in replacements(args)}


def test_importing_the_plugin_changes_nothing_of_basicsr():
    """In a fresh process: every attribute our command would replace is BasicSR's own after ``import dml_basicsr``
    (and after importing each subpackage, which the docs call plain code)."""
    script = textwrap.dedent('''
        import json
        import dml_basicsr, dml_basicsr.ops, dml_basicsr.degradation, dml_basicsr.integrations.mmengine
        import dml_basicsr.data, dml_basicsr.models, dml_basicsr.commands.train_test
        from test_basicsr_scope import owners_of_replaced_attributes
        print(json.dumps(owners_of_replaced_attributes()))
    ''')
    proc = subprocess.run([sys.executable, '-c', script], cwd=PROJECT_ROOT / 'tests', capture_output=True, text=True,
                          env={'PYTHONPATH': f'{PROJECT_ROOT}:{PROJECT_ROOT / "tests"}', 'PATH': '/usr/bin:/bin',
                               'CUDA_VISIBLE_DEVICES': ''})
    assert proc.returncode == 0, proc.stderr[-3000:]
    owners = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(owners) == 17
    assert {name: module for name, module in owners.items() if not module.startswith('basicsr.')} == {}


def test_the_scope_installs_for_the_run_and_restores_even_on_error(tmp_path):
    before = owners_of_replaced_attributes()
    args = build_parser().parse_args(['train', '-opt', 'x.yml'])
    try:
        with basicsr_run(args):
            during = owners_of_replaced_attributes()
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert all(module.startswith('dml_basicsr.') for module in during.values()), during
    assert owners_of_replaced_attributes() == before


def test_after_our_command_ran_in_this_process_basicsr_is_its_own_again(tmp_path):
    opt_file = write_yaml(tmp_path / 'tiny.yml', tiny_dml_options('tiny_scope', total_iter=2))
    proc = run_cli(['train', '-opt', str(opt_file)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(module.startswith('basicsr.') for module in owners_of_replaced_attributes().values())


PLAIN_BASICSR_TRAINING = '''
import json
import sys
import dml_basicsr  # one added import, as in a Real-ESRGAN-style training script
import basicsr.train
sys.argv = ['train.py', '-opt', 'plain.yml', '--force_yml', 'train:note=a b']
basicsr.train.train_pipeline('.')
from test_basicsr_scope import owners_of_replaced_attributes
print(json.dumps(owners_of_replaced_attributes()))
'''


def test_a_plain_basicsr_training_beside_the_import_runs_basicsrs_own_functions(tmp_path):
    rng = np.random.default_rng(0)
    for folder in ('hr', 'lr'):
        (tmp_path / folder).mkdir()
    hr = cv2.GaussianBlur(rng.integers(0, 255, (32, 32, 3)).astype(np.uint8), (5, 5), 1)
    cv2.imwrite(str(tmp_path / 'hr' / 'a.png'), hr)
    cv2.imwrite(str(tmp_path / 'lr' / 'a.png'), cv2.resize(hr, (16, 16), interpolation=cv2.INTER_AREA))
    write_yaml(tmp_path / 'plain.yml', dict(
        name='plain', model_type='SRModel', scale=2, num_gpu=0, manual_seed=0,
        datasets=dict(train=dict(name='t', type='PairedImageDataset', dataroot_gt='hr', dataroot_lq='lr',
                                 filename_tmpl='{}', io_backend=dict(type='disk'), gt_size=16, use_hflip=True,
                                 use_rot=False, num_worker_per_gpu=0, batch_size_per_gpu=1, dataset_enlarge_ratio=1,
                                 prefetch_mode=None)),
        network_g=dict(type='MSRResNet', num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1, upscale=2),
        path=dict(pretrain_network_g=None, strict_load_g=True, resume_state=None),
        train=dict(optim_g=dict(type='Adam', lr=1e-4), scheduler=dict(type='MultiStepLR', milestones=[10], gamma=0.5),
                   total_iter=2, warmup_iter=-1, pixel_opt=dict(type='L1Loss', loss_weight=1.0)),
        logger=dict(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False), dist_params=dict(backend='gloo')))
    proc = subprocess.run([sys.executable, '-c', PLAIN_BASICSR_TRAINING], cwd=tmp_path, capture_output=True,
                          text=True, env={'PYTHONPATH': f'{PROJECT_ROOT}:{PROJECT_ROOT / "tests"}',
                                          'PATH': '/usr/bin:/bin', 'CUDA_VISIBLE_DEVICES': '', 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    owners = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(module.startswith('basicsr.') for module in owners.values()), owners
    copy = (tmp_path / 'experiments' / 'plain' / 'plain.yml').read_text().splitlines()
    # BasicSR's copy_opt_file joins sys.argv with spaces; ours would quote 'train:note=a b'
    assert copy[2] == '# train.py -opt plain.yml --force_yml train:note=a b'
    assert (tmp_path / 'experiments' / 'plain' / 'models' / 'net_g_2.pth').is_file()
