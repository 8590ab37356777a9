"""dml_basicsr.integrations (mmengine, dml_degrade_transform, dml_data_preprocessor, degradation_options): DMLDegrade
(pipeline transform) and DMLDataPreprocessor (batch level), built from config dicts through dml_basicsr's registries
and mmengine's, equal to DMLDegradation on the same input and seed; an unknown option is refused with a suggestion."""
import copy
import functools
import subprocess
import sys
import types

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.model import ImgDataPreprocessor
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import DefaultScope, Registry

from dml_basicsr import DMLDegradation
from dml_basicsr.data.embedded import load_embedded
from dml_basicsr.integrations import mmengine as integration
from dml_basicsr.integrations.mmengine import MODELS, TRANSFORMS, DMLDataPreprocessor, DMLDegrade
from dml_basicsr.utils.checkpoint import CheckpointError

SEED = 3
OPTIONS = dict(pretrained='city100-nikon-x2', noise_sigma=5.0, seed=SEED)


@functools.lru_cache(maxsize=1)
def pretrained_net():
    return DMLDegradation.pretrained('city100-nikon-x2').net


def reference(**overrides):
    """A fresh DMLDegradation with the components' options: the same generator state as a fresh component."""
    return DMLDegradation(copy.deepcopy(pretrained_net()), **{'noise_sigma': 5.0, 'seed': SEED, **overrides})


def photo_crop(name='chelsea', top=40, left=60, h=46, w=38):
    """A textured, colourful uint8 BGR (h, w, 3) crop of a shipped photograph."""
    bgr = load_embedded(name)[top:top + h, left:left + w]
    return np.round(bgr * 255.).astype(np.uint8)


def rgb_batch(images_bgr):
    """(B, 3, H, W) float32 RGB in [0, 1] of uint8 BGR (H, W, 3) images."""
    return torch.stack([torch.from_numpy(im[:, :, ::-1].astype(np.float32) / 255.).permute(2, 0, 1)
                        for im in images_bgr])


REGISTRIES = {'DMLDegrade': (TRANSFORMS, MMENGINE_TRANSFORMS), 'DMLDataPreprocessor': (MODELS, MMENGINE_MODELS)}


def build(name, how, **options):
    """Component ``name`` built from a config dict in one of the BUILD_WAYS."""
    own, mmengines = REGISTRIES[name]
    if how == 'package registry':
        return own.build(dict(type=name, **options))
    if how == 'mmengine registry, scoped type':
        return mmengines.build(dict(type=f'dml_basicsr.{name}', **options))
    with DefaultScope.overwrite_default_scope('dml_basicsr'):
        return mmengines.build(dict(type=name, **options))


BUILD_WAYS = ['package registry', 'mmengine registry, scoped type', 'mmengine registry, default scope']


def test_registries_are_scoped_children_of_mmengines():
    assert TRANSFORMS.parent is MMENGINE_TRANSFORMS and MODELS.parent is MMENGINE_MODELS
    assert TRANSFORMS.scope == MODELS.scope == 'dml_basicsr'
    assert MMENGINE_TRANSFORMS._children['dml_basicsr'] is TRANSFORMS
    assert MMENGINE_MODELS._children['dml_basicsr'] is MODELS
    assert TRANSFORMS.get('DMLDegrade') is DMLDegrade and MODELS.get('DMLDataPreprocessor') is DMLDataPreprocessor


# ------------------------------------------------------------------------------------ DMLDegrade


@pytest.mark.parametrize('how', BUILD_WAYS)
def test_transform_built_from_config_equals_dml_degradation(how):
    transform = build('DMLDegrade', how, **OPTIONS)
    assert isinstance(transform, DMLDegrade)
    gt = photo_crop()
    results = transform({'gt': gt.copy(), 'gt_channel_order': 'bgr', 'gt_color_type': 'color'})

    expected = reference()(rgb_batch([gt]))[0].flip(0).permute(1, 2, 0).numpy() * 255.
    lr = results['img']
    assert lr.shape == (23, 19, 3) and lr.dtype == np.float32
    np.testing.assert_array_equal(lr, expected)
    np.testing.assert_array_equal(results['gt'], gt)  # the gt is left as it was
    assert results['img_channel_order'] == 'bgr' and results['img_color_type'] == 'color'


def test_transform_reads_the_channel_order_and_keeps_it():
    gt = photo_crop()
    as_bgr = DMLDegrade(**OPTIONS)({'gt': gt, 'gt_channel_order': 'bgr'})['img']
    rgb_image = np.ascontiguousarray(gt[:, :, ::-1])
    as_rgb = DMLDegrade(**OPTIONS)({'gt': rgb_image, 'gt_channel_order': 'rgb'})['img']
    # The same picture in either order gives the same LR, in the order it came in.
    np.testing.assert_array_equal(as_rgb, as_bgr[:, :, ::-1])
    # Without a recorded order the results are read as BGR; forcing the wrong order changes the kernels.
    default = DMLDegrade(**OPTIONS)({'gt': gt})['img']
    np.testing.assert_array_equal(default, as_bgr)
    wrong = DMLDegrade(**OPTIONS, channel_order='rgb')({'gt': gt, 'gt_channel_order': 'bgr'})['img']
    assert np.abs(wrong - as_bgr).max() > 1.


def test_transform_float_images_in_zero_one_and_grey_images():
    gt = photo_crop()
    on_255 = DMLDegrade(**OPTIONS)({'gt': gt})['img']
    on_1 = DMLDegrade(**OPTIONS, max_value=1)({'gt': gt.astype(np.float32) / 255.})['img']
    np.testing.assert_allclose(on_1 * 255., on_255, atol=2e-4)
    assert on_1.max() <= 1.

    grey = gt[:, :, 1]
    lr = DMLDegrade(**OPTIONS, lr_key='lq')({'gt': grey})['lq']
    expected = reference()(torch.from_numpy(grey.astype(np.float32) / 255.)[None, None])[0, 0].numpy() * 255.
    assert lr.shape == (23, 19, 1)
    np.testing.assert_array_equal(lr[:, :, 0], expected)


def test_transform_noise_follows_the_seed():
    gt = photo_crop()
    first = DMLDegrade(**OPTIONS)({'gt': gt})['img']
    again = DMLDegrade(**OPTIONS)({'gt': gt})['img']
    other = DMLDegrade(**{**OPTIONS, 'seed': SEED + 1})({'gt': gt})['img']
    np.testing.assert_array_equal(first, again)
    assert 1. < np.abs(first - other).max() < 60.


def test_transform_in_an_mmengine_pipeline_and_its_repr():
    pipeline = Compose([dict(type='dml_basicsr.DMLDegrade', **OPTIONS, gt_key='hr', lr_key='lr')])
    gt = photo_crop()
    out = pipeline({'hr': gt})
    direct = DMLDegrade(**OPTIONS, gt_key='hr', lr_key='lr').transform({'hr': gt})
    np.testing.assert_array_equal(out['lr'], direct['lr'])
    text = repr(pipeline.transforms[0])
    assert text.startswith('DMLDegrade(') and "pretrained='city100-nikon-x2'" in text and 'seed=3' in text
    assert "gt_key='hr'" in text and "lr_key='lr'" in text


@pytest.mark.parametrize('options, error, match', [
    (dict(noise_sigma=5.0), ValueError, r'DMLDegrade: .*checkpoint .*pretrained \(one of: city100-nikon-x1, '),
    (dict(pretrained='city100-nikon-x2', checkpoint='net.pth'), ValueError,
     r'DMLDegrade: .*checkpoint .*pretrained .*(not both|it has checkpoint, pretrained)'),
    (dict(pretrained='nikon'), ValueError, r"DMLDegrade: unknown pretrained DML model 'nikon'; available: city100"),
    (dict(checkpoint='/nonexistent/net_g.pth'), CheckpointError, r'DMLDegrade: .*/nonexistent/net_g.pth'),
    (dict(pretrained='city100-nikon-x2', noise_sigma='five'), ValueError, r"DMLDegrade: noise_sigma .* got 'five'"),
    (dict(pretrained='city100-nikon-x2', noise_sigma=[5, 1]), ValueError, r'DMLDegrade: noise_sigma .*\[5, 1\]'),
    (dict(pretrained='city100-nikon-x2', seed='0'), ValueError, r"DMLDegrade: seed must be an integer"),
    (dict(pretrained='city100-nikon-x2', channel_order='rbg'), ValueError, r"DMLDegrade: channel_order .* 'rbg'"),
    (dict(pretrained='city100-nikon-x2', max_value=0), ValueError, r'DMLDegrade: max_value'),
])
def test_transform_bad_options_give_one_clear_error(options, error, match):
    with pytest.raises(error, match=match):
        DMLDegrade(**options)


def test_transform_bad_options_through_the_registry_keep_the_message():
    with pytest.raises(ValueError, match=r"unknown pretrained DML model 'nope'"):
        MMENGINE_TRANSFORMS.build(dict(type='dml_basicsr.DMLDegrade', pretrained='nope'))


@pytest.mark.parametrize('results, match', [
    ({'img': np.zeros((8, 8, 3), np.uint8)}, r"DMLDegrade: the results have no 'gt' \(gt_key\); keys: img"),
    ({'gt': np.zeros((16, 16, 4), np.uint8)}, r"DMLDegrade: results\['gt'\] must be an \(H, W, C\) .*\(16, 16, 4\)"),
    ({'gt': np.zeros((2, 16, 16, 3), np.uint8)}, r"results\['gt'\] must be an \(H, W, C\) image .*\(2, 16, 16, 3\)"),
    ({'gt': [np.zeros((16, 16, 3), np.uint8)]}, r"results\['gt'\] must be a numpy \(H, W, C\) image, got list"),
    ({'gt': np.zeros((16, 16, 3), np.int32)}, r"results\['gt'\] must be uint8 or float, got int32"),
    ({'gt': np.zeros((16, 16, 3), np.uint8), 'gt_channel_order': 'yuv'}, r"results\['gt_channel_order'\] must be"),
])
def test_transform_bad_images_name_the_key(results, match):
    with pytest.raises(ValueError, match=match):
        DMLDegrade(**OPTIONS)(results)


def test_transform_uint8_image_with_max_value_one_is_an_error():
    with pytest.raises(ValueError, match=r"results\['gt'\] is uint8 \(0-255\) but max_value is 1"):
        DMLDegrade(**OPTIONS, max_value=1.)({'gt': photo_crop()})


# ------------------------------------------------------------------------------------ DMLDataPreprocessor


def gt_batch_bgr(n=2, size=40):
    """n uint8 BGR (3, size, size) tensors of different photographs, as mmengine's pseudo_collate gives them."""
    crops = [photo_crop(name, h=size, w=size) for name in ('chelsea', 'astronaut', 'coffee')[:n]]
    return crops, [torch.from_numpy(np.ascontiguousarray(c.transpose(2, 0, 1))) for c in crops]


@pytest.mark.parametrize('how', BUILD_WAYS)
def test_preprocessor_built_from_config_equals_dml_degradation(how):
    preprocessor = build('DMLDataPreprocessor', how, **OPTIONS, mean=[0., 0., 0.], std=[255., 255., 255.], bgr_to_rgb=True)
    assert isinstance(preprocessor, DMLDataPreprocessor)
    crops, inputs = gt_batch_bgr()
    out = preprocessor({'inputs': inputs}, training=True)

    gt_rgb = rgb_batch(crops)
    expected_lr = reference()(gt_rgb)
    assert out['inputs'].shape == (2, 3, 20, 20) and out['inputs'].dtype == torch.float32
    torch.testing.assert_close(out['inputs'], expected_lr, rtol=0, atol=1e-6)
    torch.testing.assert_close(out['data_samples'], gt_rgb, rtol=0, atol=1e-6)


def test_preprocessor_normalises_after_degrading():
    mean, std = [100., 110., 120.], [50., 60., 70.]
    preprocessor = DMLDataPreprocessor(**OPTIONS, mean=mean, std=std, bgr_to_rgb=True)
    crops, inputs = gt_batch_bgr()
    out = preprocessor({'inputs': torch.stack(inputs)}, training=True)  # default_collate: one stacked tensor

    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    gt_rgb = rgb_batch(crops)
    expected_lr = reference()(gt_rgb) * 255.
    torch.testing.assert_close(out['inputs'], (expected_lr - m) / s, rtol=0, atol=1e-5)
    torch.testing.assert_close(out['data_samples'], (gt_rgb * 255. - m) / s, rtol=0, atol=1e-5)
    # Degrading the normalised images instead (the wrong order) is refused: they are not in [0, 1].
    with pytest.raises(ValueError, match=r'input values must be finite and in \[0, 1\]'):
        reference()((gt_rgb * 255. - m) / s)


def test_preprocessor_rgb_to_bgr_degrades_in_rgb_then_converts():
    crops, inputs_bgr = gt_batch_bgr()
    inputs_rgb = [x.flip(0) for x in inputs_bgr]
    out = DMLDataPreprocessor(**OPTIONS, rgb_to_bgr=True)({'inputs': inputs_rgb}, training=True)
    expected_lr = reference()(rgb_batch(crops)) * 255.
    torch.testing.assert_close(out['inputs'], expected_lr.flip(1), rtol=0, atol=1e-4)
    torch.testing.assert_close(out['data_samples'], torch.stack(inputs_bgr).float())


def test_preprocessor_leaves_validation_batches_alone():
    options = dict(mean=[0., 0., 0.], std=[255., 255., 255.], bgr_to_rgb=True, pad_size_divisor=8)
    preprocessor = DMLDataPreprocessor(**OPTIONS, **options)
    plain = ImgDataPreprocessor(**options)
    _, lr_inputs = gt_batch_bgr(size=30)
    gt = torch.rand(2, 3, 60, 60)

    out = preprocessor({'inputs': list(lr_inputs), 'data_samples': gt}, training=False)
    expected = plain({'inputs': list(lr_inputs), 'data_samples': gt}, training=False)
    assert out['inputs'].shape == (2, 3, 32, 32)  # padded to 8, not degraded
    assert torch.equal(out['inputs'], expected['inputs'])
    assert out['data_samples'] is gt
    # Validation drew no noise: the next training batch is the first one a fresh preprocessor makes.
    crops, inputs = gt_batch_bgr()
    train = preprocessor({'inputs': inputs}, training=True)
    fresh = DMLDataPreprocessor(**OPTIONS, **options)({'inputs': inputs}, training=True)
    assert torch.equal(train['inputs'], fresh['inputs'])


def test_preprocessor_inside_a_model_follows_it_and_saves_with_it():
    from mmengine.model import BaseModel

    class Tiny(BaseModel):
        def forward(self, inputs, data_samples=None, mode='tensor'):
            return inputs

    model = Tiny(data_preprocessor=dict(type='dml_basicsr.DMLDataPreprocessor', **OPTIONS))
    assert isinstance(model.data_preprocessor, DMLDataPreprocessor)
    model.to(torch.device('cpu'))
    assert model.data_preprocessor.device == torch.device('cpu')
    assert 'data_preprocessor.degradation.net.basis' in model.state_dict()
    text = repr(model.data_preprocessor)
    assert "pretrained='city100-nikon-x2'" in text and 'seed=3' in text


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_preprocessor_runs_on_the_models_device():
    preprocessor = DMLDataPreprocessor(**OPTIONS, mean=[0., 0., 0.], std=[255., 255., 255.], bgr_to_rgb=True)
    preprocessor.to('cuda')
    crops, inputs = gt_batch_bgr()  # on the CPU, as a DataLoader hands them over
    out = preprocessor({'inputs': inputs}, training=True)
    assert out['inputs'].device.type == 'cuda' and out['data_samples'].device.type == 'cuda'
    expected = reference()(rgb_batch(crops).cuda())  # the same seed draws the same noise on CUDA
    torch.testing.assert_close(out['inputs'], expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize('data, match', [
    ({'inputs': torch.zeros(2, 4, 16, 16)}, r"data\['inputs'\] must be the ground-truth .*shape \(2, 4, 16, 16\)"),
    ({'inputs': torch.zeros(3, 16, 16)}, r"data\['inputs'\] must be the ground-truth images.*shape \(3, 16, 16\)"),
    ({'inputs': [torch.zeros(3, 16, 16), torch.zeros(3, 16, 20)]}, r"of one size.*\[\(3, 16, 16\), \(3, 16, 20\)\]"),
    ({'inputs': torch.zeros(2, 3, 16, 16), 'data_samples': torch.zeros(2, 3, 16, 16)},
     r"data\['data_samples'\] receives it; leave data_samples out"),
    ({'inputs': torch.zeros(2, 1, 16, 16)}, r"mean/std have 3 values but the training data\['inputs'\] have 1"),
    ({'inputs': torch.rand(2, 3, 16, 16)}, r"data\['inputs'\] hold values in \[0, 1\]; it takes 0-255 images"),
])
def test_preprocessor_bad_training_batches_name_the_key(data, match):
    preprocessor = DMLDataPreprocessor(**OPTIONS, mean=[0., 0., 0.], std=[1., 1., 1.])
    with pytest.raises(ValueError, match='DMLDataPreprocessor: .*' + match):
        preprocessor(data, training=True)


@pytest.mark.parametrize('options, match', [
    (dict(), r'.*checkpoint .*pretrained \(one of: city100-nikon-x1, city100-nikon-x2, realsr-x4\)'),
    (dict(pretrained='city100-nikon-x3'), r"unknown pretrained DML model 'city100-nikon-x3'"),
    (dict(pretrained='city100-nikon-x2', bgr_to_rgb=True, rgb_to_bgr=True), r'set at most one of bgr_to_rgb and '),
    (dict(pretrained='city100-nikon-x2', mean=[0., 0., 0.]), r'give both mean and std .*, or neither'),
    (dict(pretrained='city100-nikon-x2', noise_sigma=-1), r'noise_sigma must be a finite number >= 0'),
    (dict(pretrained='city100-nikon-x2', mean=[0., 0., 0.], std=[255., 0., 255.]), r'std must be finite numbers > 0'),
    (dict(pretrained='city100-nikon-x2', mean=[0., 0., 0.], std=[255., float('inf'), 255.]),
     r'std must be finite numbers > 0'),
])
def test_preprocessor_bad_options_give_one_clear_error(options, match):
    with pytest.raises(ValueError, match='DMLDataPreprocessor: ' + match):
        MODELS.build(dict(type='DMLDataPreprocessor', **options))


def test_fixed_kernel_source_passes_through():
    kernel = dict(kernel='gaussian', sigma=1.2, scale=2)
    gt = photo_crop()
    lr = DMLDegrade(fixed_kernel=kernel, seed=SEED)({'gt': gt})['img']
    expected = DMLDegradation.fixed_kernel(**kernel, seed=SEED)(rgb_batch([gt]))[0].flip(0).permute(1, 2, 0) * 255.
    np.testing.assert_array_equal(lr, expected.numpy())
    preprocessor = MODELS.build(dict(type='DMLDataPreprocessor', fixed_kernel=kernel, seed=SEED))
    assert "fixed_kernel={'kernel': 'gaussian'" in repr(preprocessor)
    _, inputs = gt_batch_bgr()
    out = preprocessor({'inputs': inputs}, training=True)
    expected = DMLDegradation.fixed_kernel(**kernel, seed=SEED)(torch.stack(inputs).float() / 255.) * 255.
    torch.testing.assert_close(out['inputs'], expected, rtol=0, atol=1e-4)


# ------------------------------------------------------------------------------------ MMagic, import weight


def test_registers_into_mmagic_when_it_is_installed(monkeypatch):
    fake_registry = types.ModuleType('mmagic.registry')
    fake_registry.TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='fake_mmagic_for_dml_tests')
    fake_registry.MODELS = Registry('model', parent=MMENGINE_MODELS, scope='fake_mmagic_for_dml_tests')
    monkeypatch.setitem(sys.modules, 'mmagic', types.ModuleType('mmagic'))
    monkeypatch.setitem(sys.modules, 'mmagic.registry', fake_registry)
    assert integration.register_into_mmagic()
    assert integration.register_into_mmagic()  # idempotent
    assert fake_registry.TRANSFORMS.get('DMLDegrade') is DMLDegrade
    assert fake_registry.MODELS.get('DMLDataPreprocessor') is DMLDataPreprocessor


def test_mmagic_is_optional(monkeypatch):
    monkeypatch.setitem(sys.modules, 'mmagic', None)  # import mmagic raises ImportError
    assert integration.register_into_mmagic() is False


def test_importing_dml_basicsr_does_not_import_mmengine():
    code = ('import sys, dml_basicsr; import dml_basicsr.integrations; '
            'print(sorted(m for m in sys.modules if m.split(".")[0] in ("mmengine", "mmcv", "mmagic")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[]'


@pytest.mark.parametrize('component', ['DMLDegrade', 'DMLDataPreprocessor'])
def test_mmengine_components_refuse_unknown_options_with_a_suggestion(component):
    from dml_basicsr.integrations import mmengine as integration

    registry = integration.TRANSFORMS if component == 'DMLDegrade' else integration.MODELS
    with pytest.raises(ValueError, match=f"{component}: unknown option 'noise_sigam'; did you mean 'noise_sigma'"):
        registry.build(dict(type=component, pretrained='city100-nikon-x2', noise_sigam=5))
    with pytest.raises(ValueError, match=f"{component}: unknown option 'real_esrgan'"):
        registry.build(dict(type=component, real_esrgan={'scale': 4}))
