"""BasicSR option files read the way ``basicsr train``/``test`` read them, for checks and tools."""
import difflib
import inspect
import os
import shlex

import yaml
from basicsr.utils.options import _postprocess_yml_value, ordered_yaml


class OptionError(ValueError):
    """The option file is missing or malformed; the message names it."""


def load_options(opt_path, force_yml=None):
    """The option file as a dict, with ``--force_yml key:sub=value`` entries applied."""
    if not os.path.isfile(opt_path):
        raise OptionError(f'option file not found: {opt_path}')
    try:
        with open(opt_path) as f:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
    except yaml.YAMLError as e:
        raise OptionError(f'{opt_path}: not valid YAML: {e}') from e
    if not isinstance(opt, dict):
        raise OptionError(f'{opt_path}: expected a mapping of options at the top level')
    for entry in force_yml or []:
        keys, _, value = entry.partition('=')
        *parents, last = keys.strip().split(':')
        node = opt
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[last] = _postprocess_yml_value(value.strip())
    return opt


def recorded_overrides(yml):
    """The ``--force_yml`` entries of the command that BasicSR recorded atop an experiment's option copy."""
    with open(yml) as f:
        head = [f.readline() for _ in range(3)]
    if not head[1].startswith('# CMD:'):
        return []
    args = shlex.split(head[2].lstrip('# '))
    if '--force_yml' not in args:
        return []
    entries = []
    for arg in args[args.index('--force_yml') + 1:]:
        if arg.startswith('-'):
            break
        entries.append(arg)
    return entries


def did_you_mean(name, valid):
    """'; did you mean 'x'?' for the closest of ``valid`` to ``name`` (difflib), or ''."""
    match = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1)
    return f"; did you mean '{match[0]}'?" if match else ''


def check_known_keys(section, valid, where, owner):
    """OptionError for the first key of the dict ``section`` not in ``valid``, naming it and the closest valid one.

    ``where`` is the section's place in the option file (e.g. 'opt.yml: datasets.train'), ``owner`` what reads
    it (e.g. 'City100Dataset').
    """
    for key in section:
        if key not in valid:
            hint = did_you_mean(key, valid) or f' (its options: {", ".join(sorted(valid))})'
            raise OptionError(f"{where}: unknown option '{key}' of {owner}{hint}")


def constructor_options(cls):
    """The keyword arguments ``cls(...)`` takes, or None if it takes any (``**kwargs``)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
