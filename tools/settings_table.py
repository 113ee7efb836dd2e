"""Write docs/settings.md, the table of an experiment config's settings,
from their declaration (mmseg_incremental/planning/settings.py).

    python tools/settings_table.py            # (re)write docs/settings.md
    python tools/settings_table.py --check    # exit 1 if it is stale
"""
import argparse
import os
import os.path as osp
import sys

from mmseg_incremental.planning import settings_markdown

DOC = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'docs', 'settings.md')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write the settings table of the docs')
    parser.add_argument(
        '--out', default=DOC, help='the file to write (docs/settings.md)')
    parser.add_argument(
        '--check',
        action='store_true',
        help='write nothing; exit 1 if the file differs from the '
        'declarations')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    text = settings_markdown()
    if args.check:
        current = None
        if osp.isfile(args.out):
            with open(args.out, encoding='utf-8') as f:
                current = f.read()
        if current != text:
            sys.exit(f'{args.out} is stale; run python '
                     'tools/settings_table.py')
        print(f'{args.out} is up to date')
        return
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w', encoding='utf-8') as f:
        f.write(text)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
