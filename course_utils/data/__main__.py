"""``python -m course_utils.data list|check|download [names...]``

- ``list``: every dataset in the catalogue, and for every split where it was found.
- ``check``: read the named datasets (all by default) from disk; exit 1 if one is missing
  or unreadable. The synthetic stand-in never counts as found, in any profile.
- ``download``: fetch the named datasets with torchvision into the data directory, from
  the official servers or from the mirror in ``COURSE_DATA_MIRROR`` (a URL holding the same
  files as ``<mirror>/<torchvision class>/<file>``, e.g. ``<mirror>/MNIST/train-images-idx3-ubyte.gz``).

Errors are reported in one line and a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys

from course_utils.runtime import profile

from . import CATALOGUE, DataFormatError, catalogue, data_root, fetch_ways, find, load_from_disk, places


def _one_line(error: BaseException) -> str:
    """``Type: message`` with the message's line breaks (torchvision's download errors have them) folded."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def _list(names: list[str]) -> int:
    root = data_root()
    print(f"data directory: {root}  (set COURSE_DATA_DIR to change it)")
    for name in names:
        info = CATALOGUE[name]
        channels, height, width = info.shape
        print(
            f"\n{name}: {len(info.classes)} classes, {channels}x{height}x{width} images, {info.download_size} download"
        )
        missing = False
        for split in info.splits:
            location = find(name, split, root)
            missing |= location is None
            print(f"  {split:10s} {f'found in {location.describe(root)}' if location else 'MISSING'}")
        if missing:
            print("  get it with: " + "\n          or: ".join(fetch_ways(name)))
    return 0


def _check(names: list[str]) -> int:
    root = data_root()
    failed = 0
    for name in names:
        missing = False
        for split in CATALOGUE[name].splits:
            try:
                dataset = load_from_disk(name, split, root)
            except DataFormatError as error:
                failed += 1
                print(f"FAIL {name} {split}: {error}")
                continue
            if dataset is None:
                failed += 1
                missing = True
                print(f"FAIL {name} {split}: not found; looked in {'; '.join(places(name, root))}")
            else:
                shape = tuple(dataset.images.shape[1:])
                print(f"ok   {name} {split}: {len(dataset)} images {shape} ({dataset.source})")
        if missing:
            print(f"     get {name} with: " + "  or: ".join(fetch_ways(name)))
    if failed and profile() == "smoke":
        print("(the smoke profile lets notebooks run on a SYNTHETIC stand-in for missing data; it is not the data)")
    return 1 if failed else 0


def _download(names: list[str]) -> int:
    root = data_root()
    source = catalogue.mirror() or "the official servers"
    failed = 0
    for name in names:
        info = CATALOGUE[name]
        for split in info.splits:
            if find(name, split, root):
                print(f"{name} {split}: already present")
                continue
            print(f"{name} {split}: downloading from {source} into {root} ({info.download_size} for all splits) ...")
            try:
                catalogue.download(name, root, split)
            except Exception as error:  # report every kind of network failure the same way
                failed += 1
                print(f"FAIL {name} {split}: {_one_line(error)}")
                continue
            if not find(name, split, root):
                failed += 1
                print(f"FAIL {name} {split}: downloaded, but still not found in {root}")
    return 1 if failed else 0


COMMANDS = {"list": _list, "check": _check, "download": _download}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.data", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=list(COMMANDS))
    parser.add_argument("names", nargs="*", help=f"datasets (default: all of {', '.join(CATALOGUE)})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in CATALOGUE]
    if unknown:
        parser.error(f"unknown dataset {', '.join(unknown)}; choose from {', '.join(CATALOGUE)}")
    try:
        profile()  # a bad COURSE_PROFILE is said here, before the notebooks trip over it
        return COMMANDS[args.command](args.names or list(CATALOGUE))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a one-line message, never a traceback, whatever went wrong
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
