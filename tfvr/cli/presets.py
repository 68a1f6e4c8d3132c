"""`tfvr presets`: the released checkpoints tfvr knows (tfvr/presets/released.json).

    tfvr presets [--family F] [--dir D]    table: name, family, file, published score, source of the score
    tfvr presets NAME [--dir D]            one preset in full (kwargs, test procedure, scores, download)

With ``--dir D`` (a folder holding downloaded checkpoints), each row says whether the file is there; a preset whose
file is absent says where to get it. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("name", nargs="?", help="show one preset in full")
    parser.add_argument("--family", help="only this family (edvr, sttn_inpaint, vid2vid)")
    parser.add_argument("--dir", type=Path, help="folder with downloaded checkpoints: say which ones are there")


def _present(p, folder: Path | None):
    if folder is None:
        return None
    base = folder / p.directory if p.directory and (folder / p.directory).is_dir() else folder
    return (base / p.file).is_file()


def run(args) -> int:
    from tfvr import presets
    from tfvr.errors import UserError

    if args.dir is not None and not args.dir.is_dir():
        raise UserError(f"{args.dir}: not a folder")
    if args.name:
        p = presets.get(args.name)
        print(p.describe())
        here = _present(p, args.dir)
        if here is not None:
            print(f"  file:     {'present' if here else 'absent'} in {args.dir}" + ("" if here else
                  f"; {p.where_to_get()}"))
        return 0
    rows = presets.list_presets(args.family)
    if not rows:
        raise UserError(f"no presets for family {args.family!r}")
    head = ("name", "family", "file", "published score", "source")
    table = [(p.name, p.family, (p.directory + "/" if p.directory else "") + p.file, p.score_text(),
              p.scores[0]["source"].split(" (")[0] if p.scores else "-") for p in rows]
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(4)]
    for r in [head, *table]:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    if args.dir is not None:
        print()
        for p in rows:
            if not _present(p, args.dir):
                print(f"absent: {p.where_to_get()}")
    print("\n`tfvr presets NAME` shows a preset in full (kwargs, test procedure, download); "
          "`tfvr export --from-pytorch FILE --out DIR` converts a released file by its name.")
    return 0
