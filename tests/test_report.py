"""dml_basicsr.commands.report (``basicsr report``): tables built from fake experiment/results folders with metrics
CSV files; a metric that no input has is an error."""
import csv
import os

import pytest

from conftest import one_error_line, run_cli
from conftest import ends_within
from dml_basicsr.cli import main as cli_main
from dml_basicsr.commands.report import ReportError, build_table, split_scale


def main(argv):
    return cli_main(['report', *argv])


def write_csv(path, rows, columns=None):
    """Write ``rows`` (dicts) to ``path`` as the validation does: header once, then the rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or list(rows[0])
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def train_rows(iters, images, psnr, ssim, lpips=None):
    """Rows of several validations; at iteration i image k has psnr + i/1000 + k (so the last iter is visible)."""
    rows = []
    for it in iters:
        for k, image in enumerate(images):
            row = dict(iter=it, image=image, psnr=psnr + it / 1000 + k, ssim=ssim + k / 100)
            if lpips is not None:
                row['lpips'] = lpips + k / 1000
            rows.append(row)
    return rows


@pytest.fixture
def runs(tmp_path):
    """experiments/DML_x2 and DML_x4 (training, 2 validations), results/Bicubic_x4 (test run), LPIPS only at x4."""
    images = ['Canon_001_HR', 'Canon_002_HR']
    write_csv(tmp_path / 'experiments' / 'DML_x2' / 'metrics_RealSR.csv', train_rows([500, 1000], images, 30, 0.9))
    write_csv(tmp_path / 'experiments' / 'DML_x4' / 'metrics_RealSR.csv',
              train_rows([500, 1000], images, 27, 0.8, lpips=0.3))
    rows = [dict(iter='Bicubic_x4', image=image, psnr=25 + k, ssim=0.7, lpips=0.5) for k, image in enumerate(images)]
    write_csv(tmp_path / 'results' / 'Bicubic_x4' / 'metrics_RealSR.csv', rows)
    return tmp_path


def test_split_scale():
    assert split_scale('DML_RCAN_x4') == ('DML_RCAN', 4)
    assert split_scale('EDSR-X2') == ('EDSR', 2)
    assert split_scale('DML_x2_x3') == ('DML_x2', 3)
    assert split_scale('Box2') == ('Box2', None)
    assert split_scale('x4') == ('x4', None)


def test_table_merges_scales_of_a_method_and_uses_last_iter(runs):
    table = build_table([runs / 'experiments' / 'DML_x2', runs / 'experiments' / 'DML_x4',
                         runs / 'results' / 'Bicubic_x4'])
    # DML x2 at iter 1000: psnr (31 + 32) / 2 = 31.5, ssim (0.90 + 0.91) / 2; x4: psnr 28.5, lpips 0.3005.
    assert table == '\n'.join([
        '| Method | x2 PSNR | x2 SSIM | x4 PSNR | x4 SSIM | x4 LPIPS |',
        '| --- | ---: | ---: | ---: | ---: | ---: |',
        '| DML | 31.50 | 0.9050 | 28.50 | 0.8050 | 0.3005 |',
        '| Bicubic | - | - | 25.50 | 0.7000 | 0.5000 |',
    ])


def test_main_prints_and_writes_the_table_atomically(runs, capsys):
    out = runs / 'tables' / 'realsr.md'
    code = main(['--label', 'DML (ours)_x4=' + str(runs / 'experiments' / 'DML_x4'), '--metrics', 'ssim,psnr',
                 '--output', str(out), str(runs / 'results' / 'Bicubic_x4'), str(runs / 'experiments' / 'DML_x4')])
    assert code == 0
    expected = '\n'.join([
        '| Method | x4 SSIM | x4 PSNR |',
        '| --- | ---: | ---: |',
        '| Bicubic | 0.7000 | 25.50 |',
        '| DML (ours) | 0.8050 | 28.50 |',
    ])
    assert capsys.readouterr().out == expected + '\n'
    assert out.read_text() == expected + '\n'
    assert sorted(os.listdir(out.parent)) == ['realsr.md']  # no temporary file left


def test_label_adds_input_and_scale_option(runs, capsys):
    plain = runs / 'experiments' / 'plain'
    write_csv(plain / 'metrics_RealSR.csv', [dict(iter=10, image='a', psnr=20.004, ssim=0.123456)])
    assert main(['--scale', '3', str(plain)]) == 0
    assert capsys.readouterr().out.splitlines()[2] == '| plain | 20.00 | 0.1235 |'
    assert main(['--label', 'Ours_x2=' + str(plain)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == '| Method | x2 PSNR | x2 SSIM |'
    assert main(['--label', 'DML, M=8_x2=' + str(plain)]) == 0  # '=' in the name: the path follows the last one
    assert capsys.readouterr().out.splitlines()[2] == '| DML, M=8 | 20.00 | 0.1235 |'
    assert main([str(plain)]) == 0  # no scale at all: a group without prefix
    assert capsys.readouterr().out.splitlines()[0] == '| Method | PSNR | SSIM |'


def test_csv_files_directly_and_dataset_choice(runs):
    folder = runs / 'results' / 'RCAN_x4'
    write_csv(folder / 'metrics_RealSR_Canon.csv', [dict(iter='RCAN_x4', image='a', psnr=29, ssim=0.81)])
    write_csv(folder / 'metrics_City100.csv', [dict(iter='RCAN_x4', image='a', psnr=33, ssim=0.91)])
    with pytest.raises(ReportError, match=r'RCAN_x4: metrics of several datasets \(City100, RealSR_Canon\)'):
        build_table([folder])
    assert build_table([folder], dataset='City100').splitlines()[2] == '| RCAN | 33.00 | 0.9100 |'
    assert build_table([folder], dataset='RealSR*').splitlines()[2] == '| RCAN | 29.00 | 0.8100 |'
    with pytest.raises(ReportError, match=r"no metrics CSV of dataset 'DRealSR' \(it has: City100, RealSR_Canon\)"):
        build_table([folder], dataset='DRealSR')
    # A CSV given directly: the method is its folder's name.
    assert build_table([folder / 'metrics_City100.csv']).splitlines()[2] == '| RCAN | 33.00 | 0.9100 |'
    other = write_csv(runs / 'EDSR_x2.csv', [dict(iter=5, image='a', psnr=30, ssim=0.9)])
    assert build_table([other]).splitlines()[:3] == ['| Method | x2 PSNR | x2 SSIM |', '| --- | ---: | ---: |',
                                                     '| EDSR | 30.00 | 0.9000 |']


def test_repeated_validation_of_an_image_counts_once_and_empty_values_are_skipped(tmp_path):
    rows = [dict(iter=100, image='a', psnr=10, ssim=0.5), dict(iter=100, image='a', psnr=20, ssim=0.6),
            dict(iter=100, image='b', psnr=30, ssim='')]
    write_csv(tmp_path / 'M_x4' / 'metrics_D.csv', rows)
    assert build_table([tmp_path / 'M_x4']).splitlines()[2] == '| M | 25.00 | 0.6000 |'


def test_errors_name_the_input(tmp_path, capsys):
    empty = tmp_path / 'experiments' / 'no_csv_x4'
    empty.mkdir(parents=True)
    (empty / 'train.log').write_text('log')
    assert main([str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'basicsr report: error: {empty}: no metrics_<dataset>.csv file')
    assert len(err.strip().splitlines()) == 1

    assert main([str(tmp_path / 'missing')]) == 2
    assert 'missing: no such folder or file' in capsys.readouterr().err

    bad = write_csv(tmp_path / 'bad_x2' / 'metrics_D.csv', [dict(step=1, psnr=3)])
    with pytest.raises(ReportError, match=f'{bad}: no iter and image column'):
        build_table([bad.parent])
    nan = write_csv(tmp_path / 'nan_x2' / 'metrics_D.csv', [dict(iter=1, image='img7', psnr='oops', ssim=1)])
    with pytest.raises(ReportError, match=f"{nan}: psnr of image img7 is 'oops'"):
        build_table([nan.parent])
    other = write_csv(tmp_path / 'other_x2' / 'metrics_D.csv', [dict(iter=1, image='a', niqe=4)])
    with pytest.raises(ReportError, match='none of the metrics psnr, ssim, lpips .*niqe'):
        build_table([other.parent])
    assert build_table([other.parent], metrics=['NIQE']).splitlines()[2] == '| other | 4.0000 |'
    header_only = tmp_path / 'header_x2' / 'metrics_D.csv'
    write_csv(header_only, [], columns=['iter', 'image', 'psnr'])
    with pytest.raises(ReportError, match='no rows'):
        build_table([header_only.parent])

    write_csv(tmp_path / 'a' / 'M_x2' / 'metrics_D.csv', [dict(iter=1, image='a', psnr=1)])
    write_csv(tmp_path / 'b' / 'M_x2' / 'metrics_D.csv', [dict(iter=1, image='a', psnr=1)])
    with pytest.raises(ReportError, match="both give method 'M' at x2"):
        build_table([tmp_path / 'a' / 'M_x2', tmp_path / 'b' / 'M_x2'])


def test_output_write_failure_leaves_no_file(runs, capsys):
    blocker = runs / 'blocker'
    blocker.write_text('a file, not a folder')
    assert main(['--output', str(blocker / 'table.md'), str(runs / 'results' / 'Bicubic_x4')]) == 2
    assert f'{blocker} exists and is not a folder' in capsys.readouterr().err  # refused before the table is built
    assert blocker.read_text() == 'a file, not a folder'


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(['--label', 'no-equals-sign'])


def write_metrics(folder, **columns):
    folder.mkdir(parents=True)
    header = ['iter', 'image', *columns]
    (folder / 'metrics_D.csv').write_text(','.join(header) + '\n' + ','.join(['1', 'a', *map(str, columns.values())])
                                          + '\n')


def test_report_metric_that_no_input_has_is_an_error(tmp_path):
    write_metrics(tmp_path / 'A_x2', psnr=30.0, ssim=0.9)
    write_metrics(tmp_path / 'B_x2', psnr=31.0, ssim=0.8, lpips=0.2)
    proc = run_cli(['report', 'A_x2', 'B_x2', '--metrics', 'psnr,ssmi'], cwd=tmp_path)
    line = one_error_line(proc, 'report')
    assert proc.returncode == 2 and '--metrics ssmi: no input has it' in line and 'psnr, ssim, lpips' in line
    proc = run_cli(['report', 'A_x2', 'B_x2', '--metrics', 'psnr,lpips'], cwd=tmp_path)
    assert proc.returncode == 0 and '| A | 30.00 | - |' in proc.stdout  # only some inputs have it: '-'
    # a metric none has, where the first input has none of the chosen: the columns of every input are listed
    proc = run_cli(['report', 'A_x2', 'B_x2', '--metrics', 'foo'], cwd=tmp_path)
    line = one_error_line(proc, 'report')
    assert '--metrics foo: no input has it (their metric columns: psnr, ssim, lpips)' in line


def test_inputs_without_metrics_are_skipped_and_named_under_the_table(runs, capsys):
    """``basicsr report results/*`` meets the table ``basicsr test`` wrote there and a run that never validated."""
    (runs / 'results' / 'Bicubic_x4.md').write_text('| table |')
    (runs / 'results' / 'crashed_x4').mkdir()
    inputs = sorted(str(p) for p in (runs / 'results').iterdir())
    assert main(inputs) == 0
    out, err = capsys.readouterr()
    table, note = out.strip().split('\n\n')
    assert table.splitlines()[2] == '| Bicubic | 25.50 | 0.7000 | 0.5000 |'
    assert note.startswith('Skipped (no metrics): ') and 'Bicubic_x4.md: not a CSV file' in note
    assert 'crashed_x4: no metrics_<dataset>.csv file' in note
    assert err.count('basicsr report: warning: skipped ') == 2


def test_a_run_without_a_scale_in_its_name_takes_the_scale_of_its_options(runs):
    write_csv(runs / 'experiments' / 'Mine' / 'metrics_RealSR.csv',
              train_rows([1000], ['Canon_001_HR', 'Canon_002_HR'], 28, 0.85, lpips=0.25))
    (runs / 'experiments' / 'Mine' / 'train_mine.yml').write_text('name: Mine\nscale: 4\n')
    header = build_table([runs / 'experiments' / 'DML_x4', runs / 'experiments' / 'Mine']).splitlines()[0]
    assert header == '| Method | x4 PSNR | x4 SSIM | x4 LPIPS |'  # one column group: Mine is x4 too
    assert build_table([runs / 'experiments' / 'Mine'], scale=2).splitlines()[0].startswith('| Method | x2 PSNR |')


def test_an_option_copy_that_is_a_fifo_gives_no_scale_without_blocking(runs):
    write_csv(runs / 'experiments' / 'Mine' / 'metrics_RealSR.csv', train_rows([1000], ['Canon_001_HR'], 28, 0.85))
    os.mkfifo(runs / 'experiments' / 'Mine' / 'train_mine.yml')
    with ends_within(10):
        table = build_table([runs / 'experiments' / 'DML_x4', runs / 'experiments' / 'Mine'])
    assert table.splitlines()[0] == '| Method | PSNR | SSIM | x4 PSNR | x4 SSIM | x4 LPIPS |'  # Mine: no scale


def test_a_metrics_csv_over_its_bound_is_one_line(runs, monkeypatch, capsys):
    from dml_basicsr.commands import report

    csv_path = runs / 'experiments' / 'DML_x4' / 'metrics_RealSR.csv'
    size = csv_path.stat().st_size
    monkeypatch.setattr(report, 'MAX_CSV_BYTES', size - 1)
    assert main([str(csv_path.parent)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f'basicsr report: error: {csv_path}: {size} bytes, more than the {size - 1} bytes CSV files may '
                   'have']
    monkeypatch.setattr(report, 'MAX_CSV_BYTES', size)
    assert main([str(csv_path.parent)]) == 0


def test_the_output_is_never_the_csv_read_through_a_link(tmp_path, capsys):
    """run2_x2/metrics_val.csv -> ../m.csv and --output m.csv: the CSV actually read is the output; refused."""
    write_csv(tmp_path / 'm.csv', [dict(iter=1, image='a', psnr=30)])
    (tmp_path / 'run2_x2').mkdir()
    (tmp_path / 'run2_x2' / 'metrics_val.csv').symlink_to('../m.csv')
    before = (tmp_path / 'm.csv').read_bytes()
    assert main(['--output', str(tmp_path / 'm.csv'), str(tmp_path / 'run2_x2')]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and 'm.csv is the input' in err, err
    assert (tmp_path / 'm.csv').read_bytes() == before


def test_the_output_is_never_the_option_copy_read(tmp_path, capsys):
    write_csv(tmp_path / 'run' / 'metrics_val.csv', [dict(iter=1, image='a', psnr=30)])
    (tmp_path / 'opt.yml').write_text('scale: 2\n')
    (tmp_path / 'run' / 'opt.yml').symlink_to(tmp_path / 'opt.yml')
    assert main(['--output', str(tmp_path / 'opt.yml'), str(tmp_path / 'run')]) == 2
    assert 'opt.yml is the input' in capsys.readouterr().err
    assert (tmp_path / 'opt.yml').read_text() == 'scale: 2\n'
