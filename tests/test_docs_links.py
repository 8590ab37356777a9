"""Every relative link of README.md and docs/**/*.md leads to a file that exists, and every #anchor to a heading
of the page it names (GitHub's heading ids)."""
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

FENCE = re.compile(r'^\s*(```|~~~)')
INLINE_CODE = re.compile(r'(`+)(?:(?!\1).)+\1')
# [text](target) and ![alt](target); the target may carry a "title"; text may hold one level of [brackets]
MD_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
IMG_SRC = re.compile(r'<img\b[^>]*?\bsrc\s*=\s*["\']([^"\']+)["\']', re.IGNORECASE)
HEADING = re.compile(r'^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$')
EXTERNAL = re.compile(r'^[a-zA-Z][a-zA-Z0-9+.-]*:')  # http:, https:, mailto:, ...


def prose_lines(text):
    """(line number, line) of the Markdown outside fenced code blocks."""
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            yield number, line


def heading_text(raw):
    """A heading's text as GitHub renders it: inline code as it is, links, HTML tags and emphasis outside code
    reduced to their text."""
    parts = re.split(r'(`+[^`]*`+)', raw)
    for i, part in enumerate(parts):
        if i % 2:
            parts[i] = part.strip('`')
            continue
        part = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', part)
        part = re.sub(r'<[^>]+>', '', part)
        parts[i] = re.sub(r'\*+|(?<![\w])_+|_+(?![\w])', '', part)
    return ''.join(parts)


def slug(text):
    """GitHub's anchor of a heading: lowercase, punctuation dropped (not hyphens or underscores), spaces -> '-'."""
    text = heading_text(text).strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path):
    """The heading ids of a Markdown file; repeats get -1, -2, ... as on GitHub."""
    seen, ids = {}, set()
    for _, line in prose_lines(path.read_text(encoding='utf-8')):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        ids.add(base if count == 0 else f'{base}-{count}')
    return ids


def links(path):
    """(line number, target) of every link and image of a Markdown file, outside code."""
    for number, line in prose_lines(path.read_text(encoding='utf-8')):
        line = INLINE_CODE.sub('', line)
        for pattern in (MD_LINK, IMG_SRC):
            for match in pattern.finditer(line):
                yield number, match.group(1)


def broken_links(path, root):
    """Messages for the links of ``path`` that lead nowhere: a missing file (or one outside ``root``) or an
    anchor that is no heading of its page. External links (http, https, mailto, ...) are not followed."""
    problems, cache = [], {}
    for number, target in links(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition('#')
        where = f'{path.relative_to(root)}:{number}: {target}'
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path.resolve()
        if not dest.exists():
            problems.append(f'{where}: no such file {dest}')
            continue
        if root.resolve() not in dest.parents and dest != root.resolve():
            problems.append(f'{where}: leads outside the project')
            continue
        if anchor:
            if dest.suffix.lower() != '.md':
                problems.append(f'{where}: an anchor into a file that is not Markdown')
                continue
            if dest not in cache:
                cache[dest] = anchors(dest)
            if unquote(anchor) not in cache[dest]:
                problems.append(f'{where}: no heading #{anchor} in {dest.name}')
    return problems


def documentation_pages(root):
    return [root / 'README.md', *sorted((root / 'docs').rglob('*.md'))]


def test_slug_follows_githubs_rule():
    assert slug('Offline synthesis: `basicsr synthesize`') == 'offline-synthesis-basicsr-synthesize'
    assert slug('mmengine / MMagic configs') == 'mmengine--mmagic-configs'
    assert slug("Training DML on RealSR (the paper's Table 1 setting)") == 'training-dml-on-realsr-the-papers-table-1-setting'
    assert slug('Training VDSR and RCAN on Syn-DML, RealSR or RealSR+Syn-DML') == \
        'training-vdsr-and-rcan-on-syn-dml-realsr-or-realsrsyn-dml'
    assert slug('Compatibility fixes (applied on `import dml_basicsr`, never in site-packages)') == \
        'compatibility-fixes-applied-on-import-dml_basicsr-never-in-site-packages'
    assert slug('**Bold** and `__init__`, [a link](x.md)') == 'bold-and-__init__-a-link'


def test_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / 'docs' / 'pictures').mkdir(parents=True)
    (tmp_path / 'docs' / 'pictures' / 'a.png').write_bytes(b'')
    (tmp_path / 'docs' / 'other.md').write_text('# Other page\n\n## Same\n\n## Same\n')
    page = tmp_path / 'docs' / 'page.md'
    page.write_text('\n'.join([
        '# Page', '',
        '## Where things live', '',
        '[ok](other.md) [ok](other.md#same-1) [ok](#where-things-live) ![ok](pictures/a.png)',
        '<img src="pictures/a.png" alt="ok"> [web](https://example.com/x#y) [mail](mailto:a@b.c)',
        '`[not a link](nowhere.md)`', '',
        '```', '[not a link either](nowhere.md)', '```', '',
        '[broken file](missing.md) ![broken picture](pictures/b.png) <img src="pictures/c.png">',
        '[broken anchor](other.md#same-2) [broken same-page anchor](#nowhere) [escapes](../../outside.md)',
    ]) + '\n')
    (tmp_path / 'README.md').write_text('[docs](docs/page.md#where-things-live) [bad](docs/page.md#page-1)\n')

    problems = [p for path in documentation_pages(tmp_path) for p in broken_links(path, tmp_path)]
    assert len(problems) == 7, problems
    for needle in ('missing.md', 'pictures/b.png', 'pictures/c.png', '#same-2', '#nowhere', 'outside.md',
                   'README.md:1: docs/page.md#page-1'):
        assert any(needle in p for p in problems), (needle, problems)
    assert not any('nowhere.md' in p or 'example.com' in p or 'mailto' in p for p in problems)


@pytest.mark.parametrize('page', documentation_pages(PROJECT_ROOT), ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_relative_link_leads_somewhere(page):
    assert page.exists()
    assert broken_links(page, PROJECT_ROOT) == []


def test_every_docs_page_is_linked_from_the_front_page():
    linked = {(PROJECT_ROOT / target.partition('#')[0]).resolve()
              for _, target in links(PROJECT_ROOT / 'README.md') if not EXTERNAL.match(target)}
    pages = sorted((PROJECT_ROOT / 'docs').rglob('*.md'))
    assert pages and [p.name for p in pages if p.resolve() not in linked] == []
