"""The one way this project reads YAML: data only (no tag constructs a Python object), mappings in file order.

Every YAML file the project reads goes through :func:`read_yaml` (option files and their experiment copies,
manifests of trained networks, ``synthesis.yml``, ``prepared.yml``, the shipped ``models.yml``), and every
``--force_yml`` value through :func:`load_yaml_text`. :class:`SafeOptionLoader` is ``yaml.SafeLoader`` with two
changes: a number in exponent form without a dot or an exponent sign (``1e-3``, ``2e4``), which YAML 1.1 reads
as a string, is the float BasicSR users mean; a base-60 number (``1:20``) is a string, as in YAML 1.2. BasicSR's option files (``!!float 1e-4``, ``!!str`` and the other
standard tags) read as with BasicSR's own loader; ``!!python/...`` and other unknown tags are one error line
naming the file. Files are read with a bound (:mod:`.bounded_read`): regular files of at most
:data:`~.bounded_read.MAX_YAML_BYTES` only.
"""
import re

import yaml

from .bounded_read import MAX_YAML_BYTES, read_bounded


class SafeOptionLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (plain data, dicts in file order) that also reads ``1e-3`` as a float, reads YAML 1.1's
    base-60 numbers (``1:20``) as strings, as YAML 1.2 does, and reports a value Python cannot hold (an int of more
    than 4300 digits, the date 2001-13-01) as a YAML error at its node."""

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as e:
            tag = str(node.tag).replace('tag:yaml.org,2002:', '!!')
            message = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise yaml.constructor.ConstructorError(None, None, f'a {tag} value that cannot be read ({message})',
                                                    node.start_mark) from None


class SafeOptionDumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` that quotes the strings :class:`SafeOptionLoader` would read as floats (``'1e-3'``)."""


EXPONENT_FLOAT = re.compile(r'^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$')
for _cls in (SafeOptionLoader, SafeOptionDumper):
    _cls.add_implicit_resolver('tag:yaml.org,2002:float', EXPONENT_FLOAT, list('-+0123456789'))

# PyYAML's int and float resolvers without YAML 1.1's base-60 forms (``1:20``, ``1:20.5``), which YAML 1.2 dropped
# and which PyYAML reads in quadratic time (a 6 MB ``1:1:1:...`` hangs): such a scalar is a string.
DECIMAL_NUMBERS = {
    'tag:yaml.org,2002:int': re.compile(r'''^(?:[-+]?0b[0-1_]+
                    |[-+]?0[0-7_]+
                    |[-+]?(?:0|[1-9][0-9_]*)
                    |[-+]?0x[0-9a-fA-F_]+)$''', re.X),
    'tag:yaml.org,2002:float': re.compile(r'''^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
                    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$''', re.X),
}


def without_base_60_resolvers(resolvers):
    """The implicit resolvers ``resolvers`` ({first character: [(tag, regexp)]}) with yaml.SafeLoader's int and float
    regexps replaced by :data:`DECIMAL_NUMBERS`; every other resolver kept, in order."""
    base_60 = {id(regexp) for first in yaml.SafeLoader.yaml_implicit_resolvers.values() for tag, regexp in first
               if tag in DECIMAL_NUMBERS}
    return {first: [(tag, DECIMAL_NUMBERS[tag] if id(regexp) in base_60 else regexp) for tag, regexp in pairs]
            for first, pairs in resolvers.items()}


def construct_decimal_int(loader, node):
    """An ``!!int`` as ``yaml.SafeLoader`` reads it, except an explicit base-60 one (``!!int 1:20``: quadratic)."""
    if ':' in loader.construct_scalar(node):
        raise yaml.constructor.ConstructorError(None, None, 'a base-60 !!int (1:20) is not read; write it in decimal',
                                                node.start_mark)
    return loader.construct_yaml_int(node)


SafeOptionLoader.yaml_implicit_resolvers = without_base_60_resolvers(SafeOptionLoader.yaml_implicit_resolvers)
SafeOptionLoader.add_constructor('tag:yaml.org,2002:int', construct_decimal_int)


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
# The most characters its scalars may have with its aliases expanded: what a file without aliases may have at most.
# A 1 MB string under an anchor that 3000 aliases name is 3 GB of text in whatever prints or copies the data.
MAX_EXPANDED_CHARS = MAX_YAML_BYTES


class RecursiveAliasError(Exception):
    """A YAML alias inside the node it refers to."""


def node_children(node):
    """The nodes directly inside the composed YAML ``node`` (keys and values of a mapping, in order)."""
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return node.value if isinstance(node, yaml.SequenceNode) else []


def expanded_total(node, own, totals=None, open_nodes=None):
    """The sum of ``own(n)`` over the nodes ``n`` of the composed YAML ``node`` with every alias expanded (each shared
    node counted as often as it is used), computed once per node; RecursiveAliasError for a node that contains
    itself."""
    totals = {} if totals is None else totals
    open_nodes = set() if open_nodes is None else open_nodes
    key = id(node)
    if key in totals:
        return totals[key]
    if key in open_nodes:
        raise RecursiveAliasError('a recursive alias (a node that contains itself)')
    open_nodes.add(key)
    total = own(node) + sum(expanded_total(child, own, totals, open_nodes) for child in node_children(node))
    open_nodes.discard(key)
    totals[key] = total
    return total


def expanded_size(node):
    """The number of nodes of the composed YAML ``node`` with every alias expanded."""
    return expanded_total(node, lambda _: 1)


def expanded_chars(node):
    """The number of characters of the scalars of the composed YAML ``node`` with every alias expanded."""
    return expanded_total(node, lambda n: len(n.value) if isinstance(n, yaml.ScalarNode) else 0)


def check_expansion(node, where, error):
    """``error('<where>: ...')`` if the aliases of the composed YAML ``node`` expand it to more than
    :data:`MAX_EXPANDED_NODES` nodes or :data:`MAX_EXPANDED_CHARS` characters of scalars."""
    size = expanded_size(node)
    if size > MAX_EXPANDED_NODES:
        raise error(f'{where}: its aliases expand it to {size} values, more than {MAX_EXPANDED_NODES} (an alias '
                    'bomb?); write the values out')
    chars = expanded_chars(node)
    if chars > MAX_EXPANDED_CHARS:
        raise error(f'{where}: its aliases expand it to {chars} characters of text, more than {MAX_EXPANDED_CHARS} '
                    '(an alias bomb?); write the values out')


def load_yaml_text(text, where, error=ValueError):
    """The YAML data of the string ``text``; ``error('<where>: ...')`` if it is not plain YAML data, holds a value
    Python cannot hold, nests too deeply, or expands (through its aliases) past :func:`check_expansion`'s bounds."""
    loader = SafeOptionLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_expansion(node, where, error)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise error(f'{where}: not valid YAML: {yaml_problem(e)}') from None
    except RecursionError:
        raise error(f'{where}: not valid YAML: nested too deeply') from None
    except RecursiveAliasError as e:
        raise error(f'{where}: not plain YAML data: {e}') from None
    finally:
        loader.dispose()


def read_yaml(path, error=ValueError):
    """The YAML data of the file ``path`` (UTF-8); ``error('<path>: ...')`` if it is not a regular file of at most
    :data:`MAX_YAML_BYTES` (a FIFO or ``/dev/zero`` is refused without blocking), cannot be read or is not plain
    YAML data (e.g. a ``!!python/object/apply`` tag)."""
    return load_yaml_text(read_bounded(path, MAX_YAML_BYTES, error, 'YAML files', encoding='utf-8'), path, error)
