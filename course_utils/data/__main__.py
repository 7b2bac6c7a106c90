"""``python -m course_utils.data list|check|download [names...]``

- ``list``: for every split, where it was found or where it was looked for.
- ``check``: load the named datasets (all by default); exit 1 if one is missing or unreadable.
- ``download``: fetch the named datasets with torchvision into the data directory.
"""

from __future__ import annotations

import argparse
import sys

from course_utils.runtime import data_dir

from . import SPLITS, DataFormatError, fetch_command, find, load_dataset, sources


def _list(names: list[str]) -> int:
    root = data_dir()
    print(f"data directory: {root}")
    for name in names:
        for split in SPLITS[name]:
            location = find(name, split, root)
            if location:
                print(f"  {name:14s} {split:10s} found: {location.describe(root)}")
            else:
                print(f"  {name:14s} {split:10s} MISSING; get it with: {fetch_command(name)}")
    return 0


def _check(names: list[str]) -> int:
    failed = 0
    for name in names:
        for split in SPLITS[name]:
            try:
                dataset = load_dataset(name, split, download_missing=False)
            except (FileNotFoundError, DataFormatError) as error:
                failed += 1
                print(f"FAIL {name} {split}: {error}")
            else:
                print(
                    f"ok   {name} {split}: {len(dataset)} images {tuple(dataset.images.shape[1:])} ({dataset.source})"
                )
    return 1 if failed else 0


def _download(names: list[str]) -> int:
    root = data_dir()
    failed = 0
    for name in names:
        for split in SPLITS[name]:
            if find(name, split, root):
                print(f"{name} {split}: already present")
                continue
            print(f"{name} {split}: downloading into {root} ...")
            try:
                sources.download(name, root, split)
            except Exception as error:  # report every kind of network failure the same way
                failed += 1
                print(f"FAIL {name} {split}: {type(error).__name__}: {error}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.data", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["list", "check", "download"])
    parser.add_argument("names", nargs="*", help=f"datasets (default: all of {', '.join(SPLITS)})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in SPLITS]
    if unknown:
        parser.error(f"unknown dataset {', '.join(unknown)}; choose from {', '.join(SPLITS)}")
    names = args.names or list(SPLITS)
    return {"list": _list, "check": _check, "download": _download}[args.command](names)


if __name__ == "__main__":
    sys.exit(main())
