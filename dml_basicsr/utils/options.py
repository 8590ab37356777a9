"""BasicSR option files read the way ``basicsr train``/``test`` read them, for checks and tools."""
import difflib
import inspect
import math
import numbers
import os
import shlex

from .safe_yaml import load_yaml_text, read_yaml


class OptionError(ValueError):
    """The option file is missing or malformed; the message names it."""


def is_int(value):
    """An int, and not a bool (YAML's true is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value):
    """A finite real number (int, float, NumPy scalar), and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def load_options(opt_path, force_yml=None, what='--force_yml'):
    """The option file as a dict (plain YAML data, :func:`~dml_basicsr.utils.safe_yaml.read_yaml`), with
    ``--force_yml key:sub=value`` entries applied (:func:`apply_overrides`; ``what`` names them in errors)."""
    if not os.path.isfile(opt_path):
        raise OptionError(f'option file not found: {opt_path}')
    opt = read_yaml(opt_path, OptionError)
    if not isinstance(opt, dict):
        raise OptionError(f'{opt_path}: expected a mapping of options at the top level')
    apply_overrides(opt, force_yml, opt_path, what)
    return opt


def override_value(text, where):
    """The value of a ``--force_yml key=value`` entry: YAML data, never evaluated (``[1, 2]`` a list, ``1e-3`` a
    float, ``~`` None; ``none`` None too, as BasicSR's parser reads it)."""
    if text.strip().lower() == 'none':
        return None
    return load_yaml_text(text, where, OptionError)


def apply_overrides(opt, entries, where, what='--force_yml'):
    """Set each ``key:sub=value`` of ``entries`` in the dict ``opt`` (the value by :func:`override_value`), as
    BasicSR's ``--force_yml`` does (the sections must exist; the last key may be new); OptionError naming
    ``where`` (the option file) and the entry otherwise."""
    for entry in entries or []:
        keys, sep, value = entry.partition('=')
        path = [key.strip() for key in keys.split(':')]
        if not sep or not all(path):
            raise OptionError(f'{where}: {what} {entry!r}: expected key=value or section:key=value')
        node = opt
        for depth, key in enumerate(path[:-1]):
            node = node.get(key) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                raise OptionError(f'{where}: {what} {entry!r}: there is no section {":".join(path[:depth + 1])} '
                                  'to set it in')
        check_not_a_typo(node, path, entry, where, what)
        node[path[-1]] = override_value(value.strip(), f'{where}: {what} {entry!r}')
    return opt


def check_not_a_typo(node, path, entry, where, what):
    """A key that ``entry`` adds (not in the section ``node``) must not look like one of the section's keys: BasicSR
    would train on with the new key unread (``train:total_iterr=5``)."""
    key = path[-1]
    if key in node:
        return
    match = difflib.get_close_matches(key, [str(k) for k in node], n=1, cutoff=0.8)
    if match:
        section = ':'.join(path[:-1] + [match[0]])
        raise OptionError(f"{where}: {what} {entry!r} adds the new key '{key}', close to the existing "
                          f"'{match[0]}': did you mean {section}=...? (to add a new key of that name, write it into "
                          'the option file)')


def recorded_overrides(yml):
    """The ``--force_yml`` entries of the command that BasicSR recorded atop an experiment's option copy."""
    try:
        with open(yml, encoding='utf-8') as f:
            head = [f.readline() for _ in range(3)]
    except (OSError, UnicodeDecodeError) as e:
        raise OptionError(f'{yml}: cannot read ({e})') from None
    if not head[1].startswith('# CMD:'):
        return []
    try:
        args = shlex.split(head[2].lstrip('# '))
    except ValueError as e:
        raise OptionError(f'{yml}: the recorded command (# CMD:) does not parse: {e}') from None
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
