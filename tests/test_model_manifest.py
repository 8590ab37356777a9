"""dml_basicsr.utils.model_manifest and dml_basicsr.commands.manifest_test: manifests of trained networks
(``model_zoo/*/models.yml``): reading (plain data only), writing, ``basicsr test`` of every row.

The last tests check the COMMITTED manifests: every row's checkpoint matches its sha256 and loads strictly into
the network BasicSR builds from its ``network_g``; ``test_table2_manifest_is_committed`` fails while
``model_zoo/realsr_x4_sr/models.yml`` is not in the repository.
"""
import copy
import csv
import os
import shutil

import cv2
import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.archs.srresnet_arch import MSRResNet

from conftest import (CODE_TAGS, PROJECT_ROOT, assert_refused, hostile, make_realsr, one_error_line, run_cli,
                      structured, write_yaml)
from dml_basicsr.archs.dml_arch import DMLNet
from dml_basicsr.archs.dsgan_arch import DSGANDegradation
from dml_basicsr.archs.network_loading import check_weights_fit
from dml_basicsr.utils.checkpoint import file_sha256
from dml_basicsr.utils.model_manifest import ManifestError, add_row, main as manifest_main, read_manifest, \
    write_manifest
from dml_basicsr.utils.output_folder import OutputFolderError

SR_NET = dict(type='MSRResNet', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=4)
DML_NET = dict(type='DMLNet', num_in_ch=1, num_basis=2, kernel_size=5, scale=4, num_feat=4)
DSGAN_NET = dict(type='DSGANDegradation', num_in_ch=3, scale=4, num_feat=4, num_block=1)
LABELS = ('(a) real', '(b) Syn-DML', '(e) real + Syn-DML')
TABLE2_LABELS = ['(a) real', '(b) Syn-DML', '(b2) Syn-DML fitted noise', '(c) Syn-bicubic', '(d) Syn-Real-ESRGAN',
                 '(e) real + Syn-DML', '(f) Syn-DSGAN', '(g) real + Syn-DSGAN']
TABLE1_LABELS = ['DML, M=4', 'DML, M=8', 'DML, M=16', 'DirectNet', 'DirectKPN', 'Uniform kernel (learned)', 'DSGAN']
TABLE2_NETWORK = dict(type='MSRResNet', num_in_ch=3, num_out_ch=3, num_feat=32, num_block=8, upscale=4)


def save_net(net_opt, path, seed, wrap=True):
    """A randomly initialised network of ``net_opt`` saved as ``basicsr train`` does ({'params': state dict})."""
    torch.manual_seed(seed)
    cls = {'MSRResNet': MSRResNet, 'DMLNet': DMLNet, 'DSGANDegradation': DSGANDegradation}[net_opt['type']]
    state = cls(**{k: v for k, v in net_opt.items() if k != 'type'}).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'params': state} if wrap else state, path)
    return path


def sr_rows(zoo):
    return [dict(label=label, network_g=dict(SR_NET), checkpoint=str(save_net(SR_NET, zoo / f'sr_{i}.pth', i)),
                 command=f'basicsr train -opt options/train_{i}.yml', notes='tiny') for i, label in enumerate(LABELS)]


@pytest.fixture
def zoo(tmp_path):
    """A manifest of three tiny MSRResNet x4 rows in <tmp>/model_zoo/sr/models.yml."""
    folder = tmp_path / 'model_zoo' / 'sr'
    write_manifest(folder / 'models.yml', sr_rows(folder), header='# tiny test zoo\n')
    return folder / 'models.yml'


def edit_manifest(path, change):
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------ reading and writing


def test_written_manifest_reads_back_with_absolute_checkpoints(zoo):
    text = zoo.read_text()
    assert text.startswith('# tiny test zoo\n')
    data = yaml.safe_load(text)
    keys = ['label', 'network_g', 'checkpoint', 'sha256', 'command', 'notes']  # the manifest's key order
    assert [list(row) for row in data['rows']] == [keys] * 3
    assert data['rows'][0]['checkpoint'] == 'sr_0.pth'  # relative to the manifest
    rows = read_manifest(str(zoo))
    assert [row['label'] for row in rows] == list(LABELS)
    assert rows[1]['checkpoint'] == str(zoo.parent / 'sr_1.pth')
    assert rows[1]['sha256'] == file_sha256(zoo.parent / 'sr_1.pth')
    assert rows[0]['network_g'] == SR_NET and rows[0]['notes'] == 'tiny'


def test_add_row_replaces_by_label_and_keeps_the_header(zoo):
    new = save_net(SR_NET, zoo.parent / 'sr_new.pth', 7)
    add_row(str(zoo), dict(label='(b) Syn-DML', network_g=SR_NET, checkpoint=str(new), command='retrained'))
    add_row(str(zoo), dict(label='(f) extra', network_g=SR_NET, checkpoint=str(new), command='x', model_type='X'))
    rows = read_manifest(str(zoo))
    assert [row['label'] for row in rows] == [*LABELS, '(f) extra']
    assert rows[1]['command'] == 'retrained' and rows[1]['sha256'] == file_sha256(new)
    assert rows[3]['model_type'] == 'X'
    assert zoo.read_text().startswith('# tiny test zoo\n')


def test_a_manifest_is_never_written_through_a_link(zoo, tmp_path, capsys):
    (tmp_path / 'victim.yml').write_text('keep\n')
    linked = zoo.parent / 'linked.yml'
    linked.symlink_to(tmp_path / 'victim.yml')
    with pytest.raises(OutputFolderError, match='linked.yml is a symbolic link'):
        write_manifest(linked, sr_rows(zoo.parent))
    assert (tmp_path / 'victim.yml').read_text() == 'keep\n'
    dangling = zoo.parent / 'dangling.yml'  # `add` makes a new manifest: not where a link points either
    dangling.symlink_to(tmp_path / 'made.yml')
    code = manifest_main(['add', '--manifest', str(dangling), '--label', 'x', '--checkpoint',
                          str(zoo.parent / 'sr_0.pth'), '--network-g', '{type: MSRResNet}', '--command', 'x'])
    assert code == 2 and 'dangling.yml is a symbolic link' in capsys.readouterr().err
    assert not (tmp_path / 'made.yml').exists()


def test_add_command_line(tmp_path, capsys):
    pth = save_net(SR_NET, tmp_path / 'zoo' / 'a.pth', 0)
    manifest = tmp_path / 'zoo' / 'models.yml'
    code = manifest_main(['add', '--manifest', str(manifest), '--label', '(a) real', '--checkpoint', str(pth),
                          '--network-g', '{type: MSRResNet, num_feat: 8, num_block: 1}', '--command', 'basicsr train',
                          '--model-type', 'OnlineSynthesisSRModel'])
    assert code == 0, capsys.readouterr().err
    row, = read_manifest(str(manifest))
    assert row['network_g'] == dict(type='MSRResNet', num_feat=8, num_block=1)
    assert row['model_type'] == 'OnlineSynthesisSRModel' and row['checkpoint'] == str(pth)
    assert manifest_main(['check', str(manifest)]) == 0
    code = manifest_main(['add', '--manifest', str(manifest), '--label', 'b', '--checkpoint', str(tmp_path / 'no.pth'),
                          '--network-g', '{type: MSRResNet}', '--command', 'x'])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count('\n') == 0 and "rows[1] ('b'): checkpoint not found" in err


@pytest.mark.parametrize('change, expected', [
    (lambda d: d.clear(), 'expected a non-empty list under rows (no rows key)'),
    (lambda d: d.update(rows='x'), 'expected a non-empty list under rows (rows is str)'),
    (lambda d: d['rows'].__setitem__(1, 'x'), 'rows[1]: expected a mapping'),
    (lambda d: d['rows'][1].pop('command'), "rows[1] ('(b) Syn-DML'): missing key command"),
    (lambda d: d['rows'][2].pop('sha256'), "rows[2] ('(e) real + Syn-DML'): missing key sha256"),
    (lambda d: d['rows'][2].update(label='(a) real'), "rows[2] ('(a) real'): label '(a) real' is also the label of "
                                                      'rows[0]'),
    (lambda d: d['rows'][0]['network_g'].pop('type'), "rows[0] ('(a) real'): network_g has no type"),
    (lambda d: d['rows'][0].update(network_g='MSRResNet'), "rows[0] ('(a) real'): network_g must be a mapping"),
    (lambda d: d['rows'][1].update(checkpoint='gone.pth'), "rows[1] ('(b) Syn-DML'): checkpoint not found: "),
    (lambda d: d['rows'][1].update(sha256='0' * 64), "rows[1] ('(b) Syn-DML'): checkpoint "),
    (lambda d: d['rows'][1].update(sha256='abc'), "rows[1] ('(b) Syn-DML'): sha256 must be 64 hex digits"),
    (lambda d: d['rows'][1].update(color='RGB'), "rows[1] ('(b) Syn-DML'): color must be 'y' or 'rgb'"),
])
def test_manifest_errors_are_one_line_naming_file_row_and_key(zoo, change, expected):
    edit_manifest(zoo, change)
    with pytest.raises(ManifestError) as info:
        read_manifest(str(zoo))
    message = str(info.value)
    assert '\n' not in message and message.startswith(f'{zoo}: ') and expected in message, message


def test_not_a_mapping_missing_and_unsafe_manifests(tmp_path):
    path = tmp_path / 'models.yml'
    for text, expected in (('- a\n- b\n', 'expected a mapping with a rows list at the top level, got list'),
                           ('rows: [\n', 'not valid YAML: '),
                           ('rows: !!python/object/apply:os.getcwd []\n', 'not valid YAML: ')):
        path.write_text(text)
        with pytest.raises(ManifestError) as info:
            read_manifest(str(path))
        assert '\n' not in str(info.value) and expected in str(info.value)
    with pytest.raises(ManifestError, match='manifest not found: '):
        read_manifest(str(tmp_path / 'none.yml'))


def test_changed_checkpoint_is_a_sha256_mismatch(zoo):
    save_net(SR_NET, zoo.parent / 'sr_1.pth', 99)  # retrained in place, manifest not updated
    with pytest.raises(ManifestError) as info:
        read_manifest(str(zoo))
    assert f"rows[1] ('(b) Syn-DML'): checkpoint {zoo.parent / 'sr_1.pth'} has sha256 " in str(info.value)
    assert 'not the ' in str(info.value)


# ------------------------------------------------------------------------------------ basicsr test of every row


@pytest.fixture
def work(tmp_path, zoo):
    """A work folder with fake RealSR V3 x4 pairs (ids 31, 32 and 40) and the SR test option file pointed at them."""
    make_realsr(tmp_path / 'RealSR', ids=(31, 32, 40), size=(32, 32))
    make_realsr(tmp_path / 'OtherRealSR', split='Test', ids=(1,), size=(32, 32))
    with open(PROJECT_ROOT / 'options' / 'test_srx4_realsr_manifest.yml') as f:
        opt = yaml.safe_load(f)
    opt['name'] = 'Tiny_manifest'
    opt['manifest'] = 'model_zoo/sr/models.yml'
    opt['datasets']['test_1'].update(dataroot='RealSR', id_range=[31, 35])
    del opt['val']['metrics']['lpips']  # the LPIPS metric has its own tests
    write_yaml(tmp_path / 'test.yml', opt)
    return tmp_path


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def test_one_command_tests_every_row_into_its_own_folder_and_reports_them(work):
    proc = run_cli(['test', '-opt', 'test.yml'], cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folders = ['Tiny_manifest_a-real', 'Tiny_manifest_b-Syn-DML', 'Tiny_manifest_e-real-Syn-DML']
    assert sorted(p.name for p in (work / 'results').iterdir()) == sorted(folders + ['Tiny_manifest_report.md'])
    for folder in folders:
        rows = read_csv(work / 'results' / folder / 'metrics_RealSRcrops_val.csv')
        assert [r['image'] for r in rows] == ['Canon_031_LR4', 'Canon_032_LR4', 'Nikon_031_LR4', 'Nikon_032_LR4']
        assert {r['iter'] for r in rows} == {folder}
        log, = (work / 'results' / folder).glob('test_*.log')  # its own log, only its own run
        assert f'name: {folder}' in log.read_text() and log.read_text().count('Loading MSRResNet model from') == 1
    table = (work / 'results' / 'Tiny_manifest_report.md').read_text().strip()
    assert proc.stdout.strip().endswith(table)
    lines = table.splitlines()
    assert lines[0] == '| Method | x4 PSNR | x4 SSIM |'
    assert [line.split(' | ')[0] for line in lines[2:]] == [f'| {label}' for label in LABELS]
    rows = read_csv(work / 'results' / folders[2] / 'metrics_RealSRcrops_val.csv')
    psnr = sum(float(r['psnr']) for r in rows) / len(rows)
    assert lines[4].startswith(f'| (e) real + Syn-DML | {psnr:.2f} | ')
    first_psnr = [read_csv(work / 'results' / folder / 'metrics_RealSRcrops_val.csv')[0]['psnr'] for folder in folders]
    assert len(set(first_psnr)) == 3  # three different networks were tested
    assert not list(work.glob('**/.partial-*'))
    # Each row's folder keeps the option file it ran (BasicSR's test copies none), so report finds its scale there.
    for folder in folders:
        copy, = (work / 'results' / folder).glob('*.yml')
        assert yaml.safe_load(copy.read_text())['scale'] == 4 and '# CMD:' in copy.read_text()
    report = run_cli(['report', *(f'results/{folder}' for folder in folders)], cwd=work)
    assert report.returncode == 0 and report.stdout.splitlines()[0] == '| Method | x4 PSNR | x4 SSIM |'


def test_force_yml_reaches_the_datasets_of_every_row(work):
    # the shipped option file as it is (LPIPS too), with the overrides its header documents
    proc = run_cli(['test', '-opt', PROJECT_ROOT / 'options' / 'test_srx4_realsr_manifest.yml', '--force_yml',
                    'manifest=model_zoo/sr/models.yml', 'datasets:test_1:dataroot=OtherRealSR',
                    'datasets:test_1:split=Test', 'datasets:test_1:id_range=~', 'name=Other'], cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for folder in ('Other_a-real', 'Other_b-Syn-DML', 'Other_e-real-Syn-DML'):
        rows = read_csv(work / 'results' / folder / 'metrics_RealSRcrops_val.csv')
        assert [r['image'] for r in rows] == ['Canon_001_LR4', 'Nikon_001_LR4']
    lines = (work / 'results' / 'Other_report.md').read_text().splitlines()
    assert lines[0] == '| Method | x4 PSNR | x4 SSIM | x4 LPIPS |' and len(lines) == 2 + len(LABELS)


def test_lr_only_photographs_give_pictures_and_a_report_per_dataset(work):
    photos = work / 'photos'
    photos.mkdir()
    cv2.imwrite(str(photos / 'street.png'), structured(12, 10, 90, seed=0))
    with open(work / 'test.yml') as f:
        opt = yaml.safe_load(f)
    opt['datasets']['test_2'] = dict(name='Photos', type='LRFolderDataset', dataroot_lq='photos', color=None)
    write_yaml(work / 'test.yml', opt)
    proc = run_cli(['test', '-opt', 'test.yml'], cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for folder in ('Tiny_manifest_a-real', 'Tiny_manifest_b-Syn-DML', 'Tiny_manifest_e-real-Syn-DML'):
        sr = cv2.imread(str(work / 'results' / folder / 'visualization' / 'Photos' / f'street_{folder}.png'))
        assert sr.shape == (48, 40, 3)
        assert [p.name for p in (work / 'results' / folder).glob('metrics_*.csv')] == ['metrics_RealSRcrops_val.csv']
    report = (work / 'results' / 'Tiny_manifest_report.md').read_text()
    blocks = report.strip().split('\n\n')
    assert blocks[0] == '**RealSRcrops_val**' and blocks[1].startswith('| Method | x4 PSNR | x4 SSIM |')
    assert blocks[2].startswith('Photos: no metrics (no aligned ground truth); the SR images are in '
                                'results/Tiny_manifest_a-real/visualization/Photos, ')


def test_degradation_rows_through_the_table1_option_file(tmp_path):
    make_realsr(tmp_path / 'RealSR', ids=(31, 36), size=(128, 128))  # LR 32x32: SSIM's window fits in the 7-pixel crop
    zoo = tmp_path / 'model_zoo' / 'deg'
    rows = [dict(label='DML, M=2', network_g=DML_NET, checkpoint=str(save_net(DML_NET, zoo / 'dml.pth', 0)),
                 command='basicsr train ...', model_type='DMLModel'),
            dict(label='DML bare', network_g=DML_NET, checkpoint=str(save_net(DML_NET, zoo / 'b.pth', 1, wrap=False)),
                 command='basicsr train ...'),  # model_type from the option file; a bare state dict: param_key_g ~
            dict(label='DSGAN', network_g=DSGAN_NET, checkpoint=str(save_net(DSGAN_NET, zoo / 'dsgan.pth', 2)),
                 command='basicsr train ...', model_type='DSGANModel', color='rgb')]  # RGB among the Y rows
    write_manifest(zoo / 'models.yml', rows)
    proc = run_cli(['test', '-opt', PROJECT_ROOT / 'options' / 'test_degradation_realsr_x4_manifest.yml',
                    '--force_yml', 'manifest=model_zoo/deg/models.yml', 'datasets:test_1:dataroot=RealSR'],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for folder in ('Degradation_x4_manifest_DML-M-2', 'Degradation_x4_manifest_DML-bare', 'Degradation_x4_manifest_DSGAN'):
        rows = read_csv(tmp_path / 'results' / folder / 'metrics_RealSRcrops_val.csv')
        assert [r['image'] for r in rows] == ['Canon_031_HR', 'Nikon_031_HR']  # id_range [31, 35] of the option file
        assert all(0 < float(r['ssim']) <= 1 for r in rows)
        network = 'DSGANDegradation' if folder.endswith('DSGAN') else 'DMLNet'
        assert f'Loading {network} model from' in next((tmp_path / 'results' / folder).glob('test_*.log')).read_text()
    lines = (tmp_path / 'results' / 'Degradation_x4_manifest_report.md').read_text().splitlines()
    assert lines[0] == '| Method | x4 PSNR | x4 SSIM |'
    assert [line.split(' | ')[0] for line in lines[2:]] == ['| DML, M=2', '| DML bare', '| DSGAN']
    assert 'nan' not in ''.join(lines)


def test_every_row_is_checked_before_any_results_folder(work):
    edit_manifest(work / 'model_zoo' / 'sr' / 'models.yml', lambda d: d['rows'][2]['network_g'].update(num_feat=16))
    proc = run_cli(['test', '-opt', 'test.yml'], cwd=work)
    assert proc.returncode == 2
    error = one_error_line(proc, 'test')
    assert error.startswith("basicsr test: error: model_zoo/sr/models.yml: rows[2] ('(e) real + Syn-DML'): ")
    assert 'does not fit MSRResNet' in error
    assert not (work / 'results').exists()


@pytest.mark.parametrize('change, expected', [
    (lambda o: o.update(network_g=SR_NET), 'test.yml: manifest and network_g together'),
    (lambda o: o.update(path={'pretrain_network_g': 'x.pth'}),
     'test.yml: manifest and path.pretrain_network_g together'),
    (lambda o: o.update(manifest='model_zoo/none.yml'), 'manifest not found: '),
    (lambda o: o['datasets']['test_1'].update(dataroot='missing'), 'RealSR folder(s) not found'),
])
def test_refused_option_files_are_one_line(work, change, expected):
    with open(work / 'test.yml') as f:
        opt = yaml.safe_load(f)
    change(opt)
    write_yaml(work / 'test.yml', opt)
    proc = run_cli(['test', '-opt', 'test.yml'], cwd=work)
    assert proc.returncode == 2
    error = one_error_line(proc, 'test')
    assert expected in error, error
    assert not (work / 'results').exists()


def test_derived_option_files_and_the_report_are_never_written_through_a_link(work, tmp_path):
    from dml_basicsr.commands.manifest_test import prepare_runs
    (tmp_path / 'victim.yml').write_text('keep\n')
    derived = tmp_path / 'derived'
    derived.mkdir()
    (derived / 'Tiny_manifest_a-real.yml').symlink_to(tmp_path / 'victim.yml')
    opt = dict(name='Tiny_manifest', manifest=str(work / 'model_zoo' / 'sr' / 'models.yml'))
    with pytest.raises(OutputFolderError, match='Tiny_manifest_a-real.yml is a symbolic link'):
        prepare_runs(opt, str(derived))
    (work / 'results').mkdir()
    (work / 'results' / 'Tiny_manifest_report.md').symlink_to(tmp_path / 'victim.yml')
    proc = run_cli(['test', '-opt', 'test.yml'], cwd=work)
    assert proc.returncode == 2 and 'Tiny_manifest_report.md is a symbolic link' in one_error_line(proc, 'test')
    assert os.listdir(work / 'results') == ['Tiny_manifest_report.md']  # refused before the first row ran
    assert (tmp_path / 'victim.yml').read_text() == 'keep\n'


def test_labels_that_would_share_a_results_folder_are_refused(work):
    edit_manifest(work / 'model_zoo' / 'sr' / 'models.yml', lambda d: d['rows'][1].update(label='a-real'))
    proc = run_cli(['test', '-opt', 'test.yml'], cwd=work)
    assert proc.returncode == 2
    error = one_error_line(proc, 'test')
    assert "rows[1] ('a-real') and rows[0] ('(a) real') would share the results folder suffix 'a-real'" in error
    assert not (work / 'results').exists()


def test_manifest_under_train_is_refused(work):
    proc = run_cli(['train', '-opt', 'test.yml'], cwd=work)
    assert proc.returncode == 2
    error = one_error_line(proc, 'train')
    assert error.startswith('basicsr train: error: test.yml: manifest: basicsr train trains the one network_g')
    assert not (work / 'experiments').exists()


# ------------------------------------------------------------------------------------ the committed manifests

COMMITTED = sorted((PROJECT_ROOT / 'model_zoo').glob('*/models.yml'))


def test_table2_manifest_is_committed():
    """Fails until model_zoo/realsr_x4_sr/models.yml (Table 2: one MSRResNet x4 per kind of pair) is committed."""
    path = PROJECT_ROOT / 'model_zoo' / 'realsr_x4_sr' / 'models.yml'
    assert path.is_file(), f'{path} is not committed'
    rows = read_manifest(str(path))
    assert [row['label'] for row in rows] == TABLE2_LABELS
    assert all(row['network_g'] == TABLE2_NETWORK for row in rows)


def test_table1_manifest_has_every_row_and_the_dsgan_reads_rgb():
    rows = read_manifest(str(PROJECT_ROOT / 'model_zoo' / 'realsr_x4_degradation' / 'models.yml'))
    assert [row['label'] for row in rows] == TABLE1_LABELS
    colors = {row['label']: row.get('color') for row in rows}
    assert colors.pop('DSGAN') == 'rgb' and set(colors.values()) == {None}  # the Y rows read the option file's Y


@pytest.mark.parametrize('manifest', COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_committed_checkpoints_match_sha256_and_load_strictly(manifest):
    for row in read_manifest(str(manifest)):  # sha256 of every checkpoint checked here
        net = build_network(copy.deepcopy(row['network_g']))
        check_weights_fit(net, row['checkpoint'], strict=True)  # as BasicSR's load_network loads it, strictly


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


def _manifest_at(work, path, change=lambda rows: None):
    """The manifest of the work folder copied to ``path``, its checkpoints absolute; the option file points at it."""
    data = yaml.safe_load((work / 'model_zoo' / 'sr' / 'models.yml').read_text())
    for row in data['rows']:
        row['checkpoint'] = str(work / 'model_zoo' / 'sr' / row['checkpoint'])
    change(data['rows'])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    edit_manifest(work / 'test.yml', lambda opt: opt.update(manifest=str(path)))


def test_the_report_never_replaces_the_manifest_or_a_checkpoint_it_reads(work):
    """``manifest: results/Tiny_manifest_report.md`` (name Tiny_manifest) was replaced by the report."""
    report = work / 'results' / 'Tiny_manifest_report.md'
    _manifest_at(work, report)
    before = report.read_bytes()
    proc = run_cli(['test', '-opt', 'test.yml'], cwd=work)
    assert_refused(proc, 'test', 'the report results/Tiny_manifest_report.md is the input')
    assert report.read_bytes() == before and os.listdir(work / 'results') == ['Tiny_manifest_report.md']
    report.unlink()
    (work / 'results' / 'Tiny_manifest_report.md').write_bytes((work / 'model_zoo' / 'sr' / 'sr_0.pth').read_bytes())
    _manifest_at(work, work / 'other' / 'models.yml', lambda rows: rows[0].update(checkpoint=str(report)))
    before = report.read_bytes()
    proc = run_cli(['test', '-opt', 'test.yml'], cwd=work)
    assert_refused(proc, 'test', 'the report results/Tiny_manifest_report.md is the input')
    assert report.read_bytes() == before and os.listdir(work / 'results') == ['Tiny_manifest_report.md']


def test_the_report_is_never_the_option_file(work, monkeypatch):
    from dml_basicsr.commands.manifest_test import manifest_test
    (work / 'results').mkdir()
    opt = yaml.safe_load((work / 'test.yml').read_text())
    monkeypatch.chdir(work)
    with pytest.raises(OutputFolderError, match='the report results/Tiny_manifest_report.md is the input'):
        manifest_test(opt, lambda run: None, option_file='results/Tiny_manifest_report.md')
    assert os.listdir(work / 'results') == []


def test_basicsr_test_never_writes_its_report_over_the_option_file_it_runs(work):
    (work / 'results').mkdir()
    shutil.copy(work / 'test.yml', work / 'results' / 'Tiny_manifest_report.md')
    before = (work / 'results' / 'Tiny_manifest_report.md').read_bytes()
    proc = run_cli(['test', '-opt', 'results/Tiny_manifest_report.md'], cwd=work)
    assert_refused(proc, 'test', 'the report results/Tiny_manifest_report.md is the input')
    assert (work / 'results' / 'Tiny_manifest_report.md').read_bytes() == before
    assert os.listdir(work / 'results') == ['Tiny_manifest_report.md']
