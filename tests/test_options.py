"""dml_basicsr.utils.options, dml_basicsr.commands.option_values and dml_basicsr.commands.basicsr_options: the option
dict of a run read as plain data (``--force_yml`` values are YAML data, never evaluated, and a typo of a key is one
line), the command recorded so that its overrides read back whole, and the option values BasicSR reads checked
before anything is written.
"""
import pytest
import yaml

from conftest import (CODE_TAGS, assert_refused, expect_option_error, hostile, one_line, run_cli, tiny_dml_options,
                      write_hostile_options, write_yaml)


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
    (lambda o: _set(o, ['manual_seed'], 'abc'),
     "manual_seed must be an integer in [0, 2**32 - 1] (or absent: a random one), got 'abc'"),
    (lambda o: _set(o, ['datasets', 'train', 'batch_size_per_gpu'], 2.0),
     'batch_size_per_gpu must be an integer, got 2.0'),
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
    # names: not hidden (the run lock is experiments/.<name>.lock), short enough for BasicSR's file names, distinct
    (lambda o: _set(o, ['name'], '.t1.lock'), "name must not start with . (run locks are .<name>.lock files)"),
    (lambda o: _set(o, ['name'], 'n' * 240), 'name has 240 characters, at most 200'),
    (lambda o: _set(o, ['datasets', 'val', 'name'], '.v'), 'datasets.val.name must not start with .'),
    (lambda o: _set(o, ['datasets', 'val', 'name'], 'v' * 201), 'datasets.val.name has 201 characters'),
    (lambda o: _set(o, ['datasets', 'val_2'], dict(o['datasets']['val'])),
     "datasets.val_2.name 'SkimageLensVal' is also the name of datasets.val"),
    (lambda o: _drop(o, 'datasets', 'val', 'name'), 'datasets.val.name is missing'),
    # values that trained to garbage with exit status 0
    (lambda o: _set(o, ['val', 'metrics', 'psnr', 'crop_border'], -1),
     'val.metrics.psnr.crop_border must be an integer >= 0, got -1'),
    (lambda o: _set(o, ['val', 'metrics', 'psnr', 'crop_border'], 2.5),
     'val.metrics.psnr.crop_border must be an integer >= 0, got 2.5'),
    (lambda o: _set(o, ['train', 'scheduler', 'gamma'], -2), 'train.scheduler.gamma must be a finite number > 0'),
    (lambda o: _set(o, ['train', 'scheduler', 'gamma'], 'abc'), "train.scheduler.gamma must be a finite number > 0, "
                                                                "got 'abc'"),
    # what BasicSR refused only after making experiments/<name>
    (lambda o: _drop(o, 'model_type'), 'model_type is missing'),
    (lambda o: _drop(o, 'scale'), 'scale is missing'),
    (lambda o: _drop(o, 'train', 'pixel_opt'), 'train.pixel_opt is missing (DMLModel trains on it'),
    (lambda o: _set(o, ['train', 'pixel_opt', 'reduction'], 'bogus'),
     "train.pixel_opt.reduction must be none, mean or sum, got 'bogus'"),
    (lambda o: _set(o, ['train', 'pixel_opt', 'loss_weight'], 'abc'),
     "train.pixel_opt.loss_weight must be a number, got 'abc'"),
    (lambda o: _drop(o, 'train', 'scheduler', 'milestones'), 'train.scheduler.milestones is missing (MultiStepLR'),
    (lambda o: _set(o, ['train', 'scheduler'], {'type': 'CosineAnnealingRestartLR'}),
     'train.scheduler.periods is missing (CosineAnnealingRestartLR'),
    (lambda o: _set(o, ['train', 'scheduler'], {'type': 'CosineAnnealingRestartLR', 'periods': [2, 2]}),
     'train.scheduler.restart_weights must be a list of 2 number(s), one per period'),
    (lambda o: _set(o, ['train', 'scheduler', 'gama'], 0.5),
     "train.scheduler: MultiStepLR takes no option 'gama'; did you mean 'gamma'"),
    (lambda o: _set(o, ['train', 'optim_g', 'betas'], [2, 3]), 'train.optim_g.betas must be two numbers in [0, 1)'),
    (lambda o: _set(o, ['train', 'optim_g', 'weight_decay'], 'abc'),
     "train.optim_g.weight_decay must be a number >= 0, got 'abc'"),
    (lambda o: _set(o, ['train', 'ema_decay'], 'x'), "train.ema_decay must be a number in [0, 1], got 'x'"),
    (lambda o: _set(o, ['train', 'ema_decay'], 1.5), 'train.ema_decay must be a number in [0, 1], got 1.5'),
    (lambda o: _set(o, ['train', 'warmup_iter'], 'abc'), "train.warmup_iter must be an integer >= -1, got 'abc'"),
    (lambda o: _set(o, ['network_g', 'num_feat'], 0), 'network_g.num_feat must be an integer >= 1, got 0'),
    (lambda o: _set(o, ['datasets', 'train', 'gt_size'], 33),
     'datasets.train.gt_size 33 must be a multiple of the scale 2'),
    (lambda o: _set(o, ['datasets', 'train', 'prefetch_mode'], 'bogus'),
     "datasets.train.prefetch_mode must be ~ (none), cpu or cuda, got 'bogus'"),
    (lambda o: _set(o, ['datasets', 'train', 'prefetch_mode'], 'cuda'), 'datasets.train.prefetch_mode cuda'),
    (lambda o: _set(o, ['logger', 'wandb'], {'project': 'p'}),
     "logger.wandb.project 'p' needs logger.use_tb_logger: true"),
    (lambda o: _set(o, ['datasets', 'val', 'kernel_grid'], 0), 'datasets.val.kernel_grid must be an integer >= 1'),
    (lambda o: _set(o, ['manual_seed'], 2 ** 40), 'manual_seed must be an integer in [0, 2**32 - 1]'),
]


@pytest.mark.parametrize('change, fragment', OPTION_MISTAKES, ids=[f for _, f in OPTION_MISTAKES])
def test_option_value_mistakes_are_one_line_before_anything_is_written(tmp_path, change, fragment):
    opt = tiny_dml_options('mistake')
    change(opt)
    expect_option_error(tmp_path, opt, fragment)


TEST_OPTION_MISTAKES = [  # the same, for basicsr test
    (lambda o: _drop(o, 'model_type'), 'model_type is missing'),
    (lambda o: _set(o, ['name'], '.t1.lock'), 'name must not start with .'),
    (lambda o: _set(o, ['datasets', 'val', 'name'], 'v' * 201), 'datasets.val.name has 201 characters'),
    (lambda o: _set(o, ['datasets', 'test_2'], dict(o['datasets']['val'])),
     "datasets.test_2.name 'SkimageLensVal' is also the name of datasets.val"),
    (lambda o: _set(o, ['val', 'metrics', 'psnr', 'crop_border'], -1), 'val.metrics.psnr.crop_border must be'),
]


@pytest.mark.parametrize('change, fragment', TEST_OPTION_MISTAKES, ids=[f for _, f in TEST_OPTION_MISTAKES])
def test_test_option_value_mistakes_are_one_line_before_the_results_folder(tmp_path, change, fragment):
    opt = tiny_dml_options('mistake')
    change(opt)
    expect_option_error(tmp_path, opt, fragment, command='test')


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


def test_a_validation_set_may_share_the_name_of_the_training_set():
    from dml_basicsr.commands.option_values import check_option_values
    opt = tiny_dml_options('shared_name')
    opt['datasets']['val']['name'] = opt['datasets']['train']['name']
    check_option_values(opt, 'opt.yml', 'train')  # a training set writes no metrics: nothing is pooled

@pytest.mark.parametrize('suffix', ['../../../../../escaped', 'x/y', 'x\\y', '/abs', '..', f'a{__import__("os").sep}b',
                                    True, ['x']])
def test_a_val_suffix_that_is_no_plain_part_of_a_file_name_is_refused(tmp_path, suffix):
    opt = tiny_dml_options('suffix')
    opt['val']['suffix'] = suffix
    expect_option_error(tmp_path, opt, 'val.suffix must be a plain part of a file name', repr(suffix),
                        command='test')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['opt.yml']


@pytest.mark.parametrize('key, command', [('foo', 'train'), ('results_root', 'train'), ('experiments_root', 'test'),
                                          ('models', 'test'), ('pretrained_g', 'train')])
def test_a_path_key_basicsr_would_make_a_folder_of_is_refused(tmp_path, key, command):
    opt = tiny_dml_options('pathkey')
    opt['path'][key] = str(tmp_path / 'made')
    expect_option_error(tmp_path, opt, f'path.{key}: basicsr {command} would create the folder', 'remove the key',
                        command=command)
    assert not (tmp_path / 'made').exists()


def test_the_path_keys_basicsr_sets_itself_or_reads_as_files_are_accepted(tmp_path):
    from dml_basicsr.commands.option_values import check_path_keys
    for command, keys in [('train', ['experiments_root', 'models', 'training_states', 'log', 'visualization']),
                          ('test', ['results_root', 'log', 'visualization'])]:
        check_path_keys({key: str(tmp_path / 'x') for key in keys}, 'opt.yml', command)
    check_path_keys(dict(pretrain_network_g=None, strict_load_g=True, param_key_g='params', resume_state=None,
                         pretrain_network_d='d.pth'), 'opt.yml', 'train')
