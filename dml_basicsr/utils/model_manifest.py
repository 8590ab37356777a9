"""Manifests of trained networks kept outside the wheel (``model_zoo/<table>/models.yml``), read and written.

A manifest is YAML (free-text ``#`` comment lines allowed) with one list, ``rows``; one row per trained network:

    rows:
      - label: (a) real                 # the method's name in the result table, unique in the manifest
        network_g: {type: MSRResNet, num_in_ch: 3, num_out_ch: 3, num_feat: 32, num_block: 8, upscale: 4}
        checkpoint: srx4_a_real.pth     # relative to the manifest's folder
        sha256: 3f1c...                 # of the checkpoint file's bytes, checked on every read
        command: basicsr train -opt options/train_srx4_realsr_real.yml
        model_type: OnlineSynthesisSRModel    # optional: the default (SR networks); DMLModel (degradations)
        color: rgb                      # optional: the images the network takes, 'y' or 'rgb', set on every
                                        # dataset of the test (default: the option file's)

Other keys of a row (``notes``, ``validation``, ...) are kept and not interpreted. ``basicsr test`` with a
top-level ``manifest:`` key in its option file tests every row (:mod:`dml_basicsr.commands.manifest_test`).

Add (or replace, by label) a row, computing its sha256 and checking every other row first:

    python -m dml_basicsr.utils.model_manifest add --manifest model_zoo/realsr_x4_sr/models.yml \\
        --label '(a) real' --checkpoint model_zoo/realsr_x4_sr/srx4_a_real.pth \\
        --network-g '{type: MSRResNet, num_in_ch: 3, num_out_ch: 3, num_feat: 32, num_block: 8, upscale: 4}' \\
        --command 'basicsr train -opt options/train_srx4_realsr_real.yml' [--model-type DMLModel] [--color rgb] \\
        [--notes TEXT]

The checkpoint is normally copied beside the manifest first (it is stored relative to the manifest, so one outside
its folder gets a ``../`` path). The manifest is written atomically; the ``#`` lines at its top are kept, other
comments are not. Check a manifest (every row, every checkpoint's sha256):

    python -m dml_basicsr.utils.model_manifest check model_zoo/realsr_x4_sr/models.yml

In code: :func:`read_manifest` (the checked rows, checkpoints absolute), :func:`write_manifest` (rows -> file),
:func:`add_row`.
"""
import argparse
import os
import re
import sys

import yaml

from .bounded_read import MAX_YAML_BYTES, read_bounded
from .checkpoint import file_sha256
from .safe_yaml import dump_yaml, load_yaml_text, read_yaml, yaml_problem
from .options import OptionError
from .output_folder import OutputFolderError, output_file

REQUIRED_KEYS = ('label', 'network_g', 'checkpoint', 'sha256', 'command')
DEFAULT_MODEL_TYPE = 'OnlineSynthesisSRModel'
SHA256 = re.compile(r'^[0-9a-fA-F]{64}$')


class ManifestError(OptionError):
    """A manifest is missing or malformed, or a checkpoint it lists is missing or changed; the message names the
    manifest and the row and key."""


def load_manifest_yaml(path):
    """The manifest file as plain YAML data (:func:`~dml_basicsr.utils.safe_yaml.read_yaml`: no tag constructs a
    Python object)."""
    if not os.path.isfile(path):
        raise ManifestError(f'manifest not found: {os.path.abspath(path)}')
    return read_yaml(path, ManifestError)


def _row_name(index, row):
    label = row.get('label') if isinstance(row, dict) else None
    return f'rows[{index}]' + (f' ({label!r})' if isinstance(label, str) and label.strip() else '')


def check_row(path, index, row, required=REQUIRED_KEYS):
    """ManifestError naming the manifest, the row and the key for a row that is not a mapping, lacks a key of
    ``required``, or has a label, network_g, checkpoint, sha256, command or model_type of the wrong kind."""
    where = f'{path}: {_row_name(index, row)}'
    if not isinstance(row, dict):
        raise ManifestError(f'{where}: expected a mapping with the keys {", ".join(REQUIRED_KEYS)}, '
                            f'got {type(row).__name__}')
    missing = [key for key in required if row.get(key) in (None, '')]
    if missing:
        raise ManifestError(f'{where}: missing key{"s" if len(missing) > 1 else ""} {", ".join(missing)}')
    for key in ('label', 'checkpoint', 'command'):
        if key in row and (not isinstance(row[key], str) or not row[key].strip()):
            raise ManifestError(f'{where}: {key} must be a non-empty string, got {row[key]!r}')
    network = row['network_g']
    if not isinstance(network, dict):
        raise ManifestError(f'{where}: network_g must be a mapping (the network_g section of an option file), '
                            f'got {network!r}')
    if not isinstance(network.get('type'), str) or not network['type']:
        raise ManifestError(f'{where}: network_g has no type (the registered network name, e.g. MSRResNet)')
    if 'sha256' in row and (not isinstance(row['sha256'], str) or not SHA256.match(row['sha256'])):
        raise ManifestError(f'{where}: sha256 must be 64 hex digits, got {row["sha256"]!r}')
    model_type = row.get('model_type')
    if model_type is not None and (not isinstance(model_type, str) or not model_type):
        raise ManifestError(f'{where}: model_type must be a model name (e.g. DMLModel), got {model_type!r}')
    if row.get('color') not in (None, 'y', 'rgb'):
        raise ManifestError(f"{where}: color must be 'y' or 'rgb' (the images its network takes), "
                            f"got {row['color']!r}")


def checkpoint_path(path, checkpoint):
    """The absolute path of a row's checkpoint, which the manifest gives relative to its own folder."""
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), os.path.expanduser(checkpoint)))


def check_checkpoint(path, index, row, checkpoint):
    """ManifestError naming the row if its checkpoint file is missing or its sha256 is not the one recorded."""
    where = f'{path}: {_row_name(index, row)}'
    if not os.path.isfile(checkpoint):
        raise ManifestError(f'{where}: checkpoint not found: {checkpoint}')
    digest = file_sha256(checkpoint)
    if digest != row['sha256'].lower():
        raise ManifestError(f'{where}: checkpoint {checkpoint} has sha256 {digest}, not the {row["sha256"]} recorded '
                            'in the manifest (a changed or damaged file; if it was retrained, add the row again)')


def read_manifest(path):
    """The rows of the manifest ``path``: a list of dicts in file order, each with ``checkpoint`` made absolute.

    Every row is checked (:func:`check_row`), labels must be unique, and every checkpoint must exist and have the
    recorded sha256 (hashed in 1 MiB blocks). Raises ManifestError, one line naming the
    manifest and the row and key.
    """
    data = load_manifest_yaml(path)
    if not isinstance(data, dict):
        raise ManifestError(f'{path}: expected a mapping with a rows list at the top level, got '
                            f'{type(data).__name__ if data is not None else "an empty file"}')
    rows = data.get('rows')
    if not isinstance(rows, list) or not rows:
        found = 'no rows key' if 'rows' not in data else f'rows is {type(rows).__name__ if rows else "empty"}'
        raise ManifestError(f'{path}: expected a non-empty list under rows ({found})')
    labels, result = {}, []
    for index, row in enumerate(rows):
        check_row(path, index, row)
        label = row['label'].strip()
        if label in labels:
            raise ManifestError(f'{path}: {_row_name(index, row)}: label {label!r} is also the label of '
                                f'rows[{labels[label]}]; labels must be unique')
        labels[label] = index
        checkpoint = checkpoint_path(path, row['checkpoint'])
        check_checkpoint(path, index, row, checkpoint)
        result.append(dict(row, label=label, checkpoint=checkpoint))
    return result


def row_model_type(row, default=DEFAULT_MODEL_TYPE):
    """The model_type that tests a row: its own, else ``default``."""
    return row.get('model_type') or default


def ordered_row(row):
    """The row's keys in the manifest's order: label, network_g, checkpoint, sha256, command, then the rest."""
    first = {key: row[key] for key in REQUIRED_KEYS if key in row}
    return dict(first, **{key: value for key, value in row.items() if key not in first})


def manifest_header(path):
    """The ``#`` comment lines (and blank lines) at the top of an existing manifest, as text; '' if none. ManifestError
    if the manifest is not a regular UTF-8 file of at most :data:`MAX_YAML_BYTES`."""
    if not os.path.isfile(path):
        return ''
    header = []
    for line in read_bounded(path, MAX_YAML_BYTES, ManifestError, 'manifests', encoding='utf-8').splitlines():
        if line.strip() and not line.lstrip().startswith('#'):
            break
        header.append(line)
    return '\n'.join(header).rstrip('\n') + '\n' if any(line.strip() for line in header) else ''


def manifest_text(path, rows, header=None):
    """The YAML text of a manifest at ``path`` holding ``rows`` (each's checkpoint stored relative to the
    manifest's folder, its sha256 computed from the file); ``header``: leading comment text (default: the
    existing file's)."""
    folder = os.path.dirname(os.path.abspath(path))
    written = []
    for index, row in enumerate(rows):
        check_row(path, index, row, required=[key for key in REQUIRED_KEYS if key != 'sha256'])
        checkpoint = os.path.abspath(os.path.expanduser(row['checkpoint']))
        if not os.path.isfile(checkpoint):
            raise ManifestError(f'{path}: {_row_name(index, row)}: checkpoint not found: {checkpoint}')
        row = dict(row, label=row['label'].strip(), checkpoint=os.path.relpath(checkpoint, folder).replace(os.sep, '/'),
                   sha256=file_sha256(checkpoint))
        written.append(ordered_row(row))
    labels = [row['label'] for row in written]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ManifestError(f'{path}: label {duplicates[0]!r} given to several rows; labels must be unique')
    header = manifest_header(path) if header is None else header
    if any(line.strip() and not line.lstrip().startswith('#') for line in header.splitlines()):
        raise ManifestError(f'{path}: the header may only hold # comment lines')
    try:
        body = dump_yaml({'rows': written}, default_flow_style=None, width=120, allow_unicode=True)
    except yaml.YAMLError as e:
        raise ManifestError(f'{path}: the rows hold a value that is not plain YAML data ({yaml_problem(e)})') from None
    text = (header.rstrip('\n') + '\n' if header.strip() else '') + body
    if load_yaml_text(text, path, ManifestError) != {'rows': written}:  # what read_manifest will read back
        raise ManifestError(f'{path}: the rows do not survive a YAML round trip (values must be plain YAML data)')
    return text


def write_manifest(path, rows, header=None):
    """Write the manifest ``path`` holding ``rows`` (see :func:`manifest_text`) through the OutputFolder of its
    folder: atomically, never through a link (OutputFolderError)."""
    text = manifest_text(path, rows, header)
    folder, name = output_file(path, 'manifest')
    folder.write_text(name, text)


def add_row(path, row):
    """Add ``row`` to the manifest ``path`` (created if missing), or replace the row of the same label; every other
    row is checked first (its checkpoint present, its sha256 unchanged)."""
    rows = read_manifest(path) if os.path.isfile(path) else []
    label = row['label'].strip() if isinstance(row.get('label'), str) else row.get('label')
    if any(old['label'] == label for old in rows):
        write_manifest(path, [row if old['label'] == label else old for old in rows])
    else:
        write_manifest(path, rows + [row])


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m dml_basicsr.utils.model_manifest',
                                     description='Add a trained network to a manifest (models.yml) of a model zoo.')
    sub = parser.add_subparsers(dest='action', required=True)
    add = sub.add_parser('add', help='add a row (or replace the row of the same label), computing its sha256')
    add.add_argument('--manifest', required=True, help='the models.yml to update (created if missing)')
    add.add_argument('--label', required=True, help='the row label, e.g. "(a) real"')
    add.add_argument('--checkpoint', required=True, help='the .pth file (stored relative to the manifest)')
    add.add_argument('--network-g', required=True, help="the network_g section as YAML, e.g. '{type: MSRResNet, ...}'")
    add.add_argument('--command', required=True, help='the command that trained it')
    add.add_argument('--model-type', help=f'the model that tests it (default {DEFAULT_MODEL_TYPE}; DMLModel for '
                     'degradation models)')
    add.add_argument('--color', choices=('y', 'rgb'), help="the images the network takes, set on every dataset of "
                     "the manifest's test (default: the test option file's)")
    add.add_argument('--notes', help='free text kept in the row')
    check = sub.add_parser('check', help='read a manifest and check every row and checkpoint sha256')
    check.add_argument('manifest')
    return parser.parse_args(argv)


def main(argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    prog = 'model_manifest'
    try:
        if args.action == 'check':
            rows = read_manifest(args.manifest)
            print(f'{args.manifest}: {len(rows)} row(s), every checkpoint present with its sha256')
            return 0
        network = load_yaml_text(args.network_g, '--network-g', ManifestError)
        row = dict(label=args.label, network_g=network, checkpoint=args.checkpoint, command=args.command)
        if args.model_type:
            row['model_type'] = args.model_type
        if args.color:
            row['color'] = args.color
        if args.notes:
            row['notes'] = args.notes
        add_row(args.manifest, row)
    except (ManifestError, OutputFolderError) as e:
        print(f'{prog}: error: {e}', file=sys.stderr)
        return 2
    print(f'{args.manifest}: row {args.label.strip()!r} written')
    return 0


if __name__ == '__main__':
    sys.exit(main())
