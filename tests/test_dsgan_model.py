"""dml_basicsr.models.dsgan_model: DSGAN's training through ``basicsr train`` on fake RealSR pairs, with the shipped
option file shrunk (issue 28; its table rows are not trained yet)."""
import re
import zipfile

import pytest
import torch
import yaml
from basicsr.models.base_model import BaseModel

from conftest import PROJECT_ROOT, make_realsr, run_cli, write_yaml
from dml_basicsr.archs import DSGANDegradation, DSGANDiscriminator
from dml_basicsr.models.dsgan_model import DSGANModel
from dml_basicsr.utils.checkpoint import CheckpointError


def test_a_short_dsgan_training_updates_both_networks_and_validates_as_table_1(tmp_path):
    opt = dsgan_options(tmp_path)
    opt['train']['total_iter'] = 2
    opt['val']['val_freq'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'dsgan.yml', opt))], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / 'experiments' / 'DSGAN_RealSRcrops_x4'
    log = ''.join(p.read_text() for p in exp.glob('train_*.log'))
    assert re.search(r'l_low: \S+ l_gan: \S+ l_lpips: \S+ l_d: \S+', log), log[-2000:]
    assert re.search(r'# psnr: [0-9.]+', log)  # synthetic vs real LR of the validation scenes
    for net in ('net_g_2.pth', 'net_d_2.pth'):
        assert (exp / 'models' / net).is_file()
    trained = torch.load(exp / 'models' / 'net_g_2.pth', weights_only=True)['params']
    torch.manual_seed(0)
    fresh = DSGANDegradation(num_in_ch=3, scale=4, num_feat=8, num_block=1).state_dict()
    assert trained.keys() == fresh.keys()
    assert not torch.equal(trained['generator.conv_last.weight'], fresh['generator.conv_last.weight'])


def test_a_trained_dsgan_is_a_degradation_source_for_online_sr_training(tmp_path):
    """``degradation: {dsgan: {checkpoint, scale}}``: the checkpoint's net_g on the bicubic downscale, in the
    training log by sha256; DML-only options beside it and a wrong scale are one line."""
    from conftest import expect_option_error, sr_options
    from dml_basicsr.degradation import build_degradation

    torch.manual_seed(0)
    net = DSGANDegradation(num_in_ch=1, scale=2, num_feat=8, num_block=2)
    checkpoint = tmp_path / 'net_g_2.pth'
    torch.save({'params': net.state_dict()}, checkpoint)
    deg = build_degradation({'dsgan': {'checkpoint': str(checkpoint), 'scale': 2}})
    hr = torch.rand(1, 1, 32, 24)
    with torch.no_grad():
        assert torch.allclose(deg(hr), net.eval()(hr).clamp(0, 1)) and deg.scale == 2

    opt = sr_options(tmp_path, checkpoint)
    opt['degradation'] = {'dsgan': {'checkpoint': str(checkpoint), 'scale': 2}}
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'sr.yml', opt))], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = ''.join(p.read_text() for p in (tmp_path / 'experiments').glob('*/train_*.log'))
    assert f'Online DSGAN degradation from {checkpoint} (sha256 ' in log

    for case, (section, fragment) in enumerate([
            ({'dsgan': {'checkpoint': str(checkpoint), 'scale': 2}, 'noise_sigma': 5},
             'degradation: noise_sigma is an option of the DML sources'),
            ({'dsgan': {'checkpoint': str(checkpoint), 'scale': 3}},
             'not the net_g of a DSGANModel training of scale 3')]):
        (tmp_path / f'case{case}').mkdir()
        expect_option_error(tmp_path / f'case{case}', dict(opt, degradation=section), fragment)


def dsgan_options(tmp_path):
    """The shipped DSGAN option file shrunk, on fake RealSR crops under ``tmp_path/datasets``."""
    make_realsr(tmp_path / 'datasets' / 'RealSR_V3_x4_crops', ids=(1, 2, 31), size=(256, 256))  # LPIPS: LR >= 64
    with open(PROJECT_ROOT / 'options' / 'train_dsgan_realsr_crops_x4.yml') as f:
        opt = yaml.safe_load(f)
    opt['datasets']['train'].update(gt_size=256, batch_size_per_gpu=2, num_worker_per_gpu=0, dataset_enlarge_ratio=2)
    opt['network_g'].update(num_feat=8, num_block=1)
    opt['network_d'].update(num_feat=8)
    return opt


def write_zip_bomb(path):
    """A torch.save archive of 8 MB of zeros with its records deflated: a few kB that torch.load would inflate."""
    torch.save({'params': {'w': torch.zeros(2_000_000)}}, path.with_suffix('.zeros'))
    with zipfile.ZipFile(path.with_suffix('.zeros')) as src, zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info.filename))
    return path


def test_a_bad_pretrain_network_d_is_one_line_before_the_experiment_exists(tmp_path):
    from conftest import expect_option_error

    opt = dsgan_options(tmp_path)
    for phase in ('train', 'val'):  # each case runs in a folder of its own
        opt['datasets'][phase]['dataroot'] = str(tmp_path / 'datasets' / 'RealSR_V3_x4_crops')
    (tmp_path / 'text.pth').write_bytes(b'not a checkpoint')
    torch.save({'params': DSGANDiscriminator(num_in_ch=3, num_feat=16).state_dict()}, tmp_path / 'wide.pth')
    for case, (pretrained, fragments) in enumerate([
            (str(tmp_path / 'text.pth'), ('text.pth: cannot load a checkpoint',)),
            (str(write_zip_bomb(tmp_path / 'bomb.pth')), ('bomb.pth: refused to load this checkpoint', 'zip bomb')),
            (str(tmp_path / 'wide.pth'), ('wide.pth: does not fit DSGANDiscriminator',)),
            (str(tmp_path / 'none.pth'), ('path.pretrain_network_d not found', 'none.pth'))]):
        (tmp_path / f'case{case}').mkdir()
        opt['path'].update(pretrain_network_d=pretrained, strict_load_d=True)
        expect_option_error(tmp_path / f'case{case}', opt, *fragments)


class DiscriminatorLoader:
    """What DSGANModel.load_network uses of a BasicSR model, without building one."""
    get_bare_model = staticmethod(lambda net: net)
    _print_different_keys_loading = BaseModel._print_different_keys_loading
    load_network = DSGANModel.load_network


def test_the_model_loads_pretrain_network_d_through_the_checked_loader(tmp_path):
    torch.manual_seed(0)
    trained = DSGANDiscriminator(num_in_ch=3, num_feat=8).state_dict()
    torch.save({'params': {f'module.{k}': v for k, v in trained.items()}}, tmp_path / 'net_d.pth')
    net = DSGANDiscriminator(num_in_ch=3, num_feat=8)
    DiscriminatorLoader().load_network(net, str(tmp_path / 'net_d.pth'), True, 'params')
    assert all(torch.equal(net.state_dict()[k], v) for k, v in trained.items())

    diverged = dict(trained, **{'net.0.weight': torch.full_like(trained['net.0.weight'], float('nan'))})
    torch.save({'params': diverged}, tmp_path / 'nan.pth')
    with pytest.raises(CheckpointError, match=r'nan\.pth: 1 of its .* weight tensors hold NaN/inf'):
        DiscriminatorLoader().load_network(net, str(tmp_path / 'nan.pth'), True, 'params')
    assert all(torch.equal(net.state_dict()[k], v) for k, v in trained.items())  # nothing of it was loaded
