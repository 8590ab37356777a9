"""The one way this project reads YAML: data only (no tag constructs a Python object), mappings in file order.

Every YAML file the project reads goes through :func:`read_yaml` (option files and their experiment copies,
manifests of trained networks, ``synthesis.yml``, ``prepared.yml``, the shipped ``models.yml``), and every
``--force_yml`` value through :func:`load_yaml_text`. :class:`SafeOptionLoader` is ``yaml.SafeLoader`` with one
addition: a number in exponent form without a dot or an exponent sign (``1e-3``, ``2e4``), which YAML 1.1 reads
as a string, is the float BasicSR users mean. BasicSR's option files (``!!float 1e-4``, ``!!str`` and the other
standard tags) read as with BasicSR's own loader; ``!!python/...`` and other unknown tags are one error line
naming the file. Files are read with a bound (:mod:`.bounded_read`): regular files of at most
:data:`~.bounded_read.MAX_YAML_BYTES` only.
"""
import re

import yaml

from .bounded_read import MAX_YAML_BYTES, read_bounded


class SafeOptionLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (plain data, dicts in file order) that also reads ``1e-3`` as a float."""


class SafeOptionDumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` that quotes the strings :class:`SafeOptionLoader` would read as floats (``'1e-3'``)."""


EXPONENT_FLOAT = re.compile(r'^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$')
for _cls in (SafeOptionLoader, SafeOptionDumper):
    _cls.add_implicit_resolver('tag:yaml.org,2002:float', EXPONENT_FLOAT, list('-+0123456789'))


def dump_yaml(data, stream=None, **kwargs):
    """``yaml.safe_dump`` (keys in order unless told) whose text :func:`read_yaml` reads back as ``data``."""
    kwargs.setdefault('sort_keys', False)
    return yaml.dump(data, stream, Dumper=SafeOptionDumper, **kwargs)


def yaml_problem(error):
    """One line for a YAML error: its problem and where (PyYAML's own message spans several lines)."""
    problem = getattr(error, 'problem', None) or str(error).strip().splitlines()[0]
    if isinstance(error, yaml.constructor.ConstructorError) and 'could not determine a constructor' in problem:
        tag = problem.split("'")[1] if "'" in problem else problem
        short = tag.replace('tag:yaml.org,2002:', '!!')
        kind = 'constructs a Python object' if short.startswith('!!python/') else 'is not a plain-data tag'
        problem = f'the tag {short} {kind}; only plain data is read (no code runs from files)'
    mark = getattr(error, 'problem_mark', None)
    return f'{problem} at line {mark.line + 1}, column {mark.column + 1}' if mark is not None else problem


# The most nodes a document may have with its aliases expanded: far above any option file or manifest (hundreds to a
# few thousand), far below what an alias bomb ("billion laughs") expands to in whatever walks the data afterwards.
MAX_EXPANDED_NODES = 1_000_000


class RecursiveAliasError(Exception):
    """A YAML alias inside the node it refers to."""


def expanded_size(node, sizes=None, open_nodes=None):
    """The number of nodes of the composed YAML ``node`` with every alias expanded (each shared node counted as
    often as it is used), computed once per node; RecursiveAliasError for a node that contains itself."""
    sizes = {} if sizes is None else sizes
    open_nodes = set() if open_nodes is None else open_nodes
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise RecursiveAliasError('a recursive alias (a node that contains itself)')
    open_nodes.add(key)
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    else:
        children = []
    size = 1 + sum(expanded_size(child, sizes, open_nodes) for child in children)
    open_nodes.discard(key)
    sizes[key] = size
    return size


def load_yaml_text(text, where, error=ValueError):
    """The YAML data of the string ``text``; ``error('<where>: ...')`` if it is not plain YAML data, nests too
    deeply, or expands (through its aliases) to more than :data:`MAX_EXPANDED_NODES` nodes."""
    loader = SafeOptionLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = expanded_size(node)
        if size > MAX_EXPANDED_NODES:
            raise error(f'{where}: its aliases expand it to {size} values, more than {MAX_EXPANDED_NODES} (an alias '
                        'bomb?); write the values out')
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise error(f'{where}: not valid YAML: {yaml_problem(e)}') from None
    except RecursionError:
        raise error(f'{where}: not valid YAML: nested too deeply') from None
    except RecursiveAliasError as e:
        raise error(f'{where}: not plain YAML data: {e}') from None
    finally:
        loader.dispose()


def read_yaml(path, error=ValueError, opener=None):
    """The YAML data of the file ``path`` (UTF-8); ``error('<path>: ...')`` if it is not a regular file of at most
    :data:`MAX_YAML_BYTES` (a FIFO or ``/dev/zero`` is refused without blocking), cannot be read or is not plain
    YAML data (e.g. a ``!!python/object/apply`` tag). ``opener(path, encoding=...)``, if given, opens it instead
    (e.g. a package resource's ``open``); what it reads is bounded the same."""
    if opener is None:
        text = read_bounded(path, MAX_YAML_BYTES, error, 'YAML files', encoding='utf-8')
    else:
        text = read_opened_text(path, opener, error)
    return load_yaml_text(text, path, error)


def read_opened_text(path, opener, error):
    """The text of ``path`` opened with ``opener`` (UTF-8), at most :data:`MAX_YAML_BYTES` characters of it."""
    try:
        with opener(path, encoding='utf-8') as f:
            text = f.read(MAX_YAML_BYTES + 1)
    except UnicodeDecodeError as e:
        raise error(f'{path}: not UTF-8 text ({e.reason} at byte {e.start})') from None
    except OSError as e:
        raise error(f'{path}: cannot read ({e.strerror or e})') from None
    if len(text) > MAX_YAML_BYTES:
        raise error(f'{path}: more than the {MAX_YAML_BYTES} bytes YAML files may have')
    return text
