"""The Python snippets of README.md and docs/ run as printed.

``...`` stands for the user's own entries (a valid Python value); a name a snippet uses without defining it
(``hr``, ``net``, ``loader``) is given here; a file it loads is made here. Every dml_basicsr component config a
snippet shows is then built through mmengine's registries, as a config's ``custom_imports`` makes them available.
"""
import ast
import importlib
import math
import pathlib
import re

import pytest
import torch
import torch.nn.functional as F

from dml_basicsr import DMLDegradation
from dml_basicsr.archs import DMLNet

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
HR_SIZE = 64


def python_snippets():
    for page in PAGES:
        for i, match in enumerate(re.finditer(r'```python\n(.*?)```', page.read_text(encoding='utf-8'), re.S)):
            yield pytest.param(match.group(1), id=f'{page.relative_to(ROOT)}:{i}')


def last_expression_kept(code):
    """The snippet compiled with a bare last expression assigned to ``_`` (so that a config dict shown alone is
    kept)."""
    tree = ast.parse(code)
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        tree.body[-1] = ast.Assign(targets=[ast.Name('_', ast.Store())], value=tree.body[-1].value)
        ast.fix_missing_locations(tree)
    return compile(tree, '<snippet>', 'exec')


def component_configs(value):
    """Every dict with a ``type`` of ``dml_basicsr.*`` inside ``value`` (nested dicts, lists, tuples)."""
    if isinstance(value, dict):
        if str(value.get('type', '')).startswith('dml_basicsr.'):
            yield value
        for item in value.values():
            yield from component_configs(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from component_configs(item)


def snippet_namespace():
    hr = torch.rand(2, 3, HR_SIZE, HR_SIZE)
    return dict(torch=torch, F=F, DMLDegradation=DMLDegradation, hr=hr, loader=[hr],
                net=lambda lr: F.interpolate(lr, size=(HR_SIZE, HR_SIZE), mode='bilinear', align_corners=False))


@pytest.fixture
def checkpoint_of_the_synthesis_page(tmp_path, monkeypatch):
    """docs/synthesis.md loads experiments/DML_RealSRV3_x4/models/net_g_latest.pth: an x4 DMLNet there."""
    path = tmp_path / 'experiments' / 'DML_RealSRV3_x4' / 'models' / 'net_g_latest.pth'
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save({'params': DMLNet(num_in_ch=1, num_basis=2, kernel_size=5, scale=4, num_feat=4).state_dict()}, path)
    monkeypatch.chdir(tmp_path)


def test_the_pages_hold_python_snippets():
    assert len(list(python_snippets())) >= 6


@pytest.mark.parametrize('code', python_snippets())
def test_snippet_runs_as_printed(code, checkpoint_of_the_synthesis_page):
    from mmengine.registry import MODELS, TRANSFORMS

    namespace = snippet_namespace()
    exec(last_expression_kept(code), namespace)  # noqa: S102  (the repository's own documentation)
    if 'deg' in namespace and 'lr' in namespace:
        deg, lr, hr = namespace['deg'], namespace['lr'], namespace['hr']
        assert lr.shape[:2] == hr.shape[:2] and lr.shape[-1] == math.ceil(hr.shape[-1] / deg.scale)
    for module in namespace.get('custom_imports', {}).get('imports', ['dml_basicsr.integrations.mmengine']):
        importlib.import_module(module)
    configs = [config for value in namespace.values() for config in component_configs(value)]
    for config in configs:
        name = config['type'].split('.', 1)[1]
        registry = TRANSFORMS if name == 'DMLDegrade' else MODELS
        assert type(registry.build(dict(config))).__name__ == name
    if 'custom_imports' in namespace:
        assert configs, 'an mmengine snippet without a dml_basicsr component'
