"""The ``noojee-desk`` command: the desktop app by default, ``sim`` and ``send`` headless."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from noojee_desk import __version__

    parser = argparse.ArgumentParser(
        prog="noojee-desk",
        description="Put leads into a Noojee PBX dialer campaign.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--data-dir", help="keep settings, queue and logs below this folder")
    parser.add_argument("--demo", action="store_true", help="start in demo mode (built-in PBX)")
    parser.add_argument(
        "--import-connection",
        metavar="FILE",
        help="add the connection in a .noojee file (shows it, then asks only for its key)",
    )
    parser.add_argument("--self-test", action="store_true", help="check this installation and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("sim", help="serve the PBX emulator on 127.0.0.1", add_help=False)
    sub.add_parser("send", help="validate and send a CSV/TSV/XLSX file of leads", add_help=False)
    return parser


def demo_allowed() -> bool:
    """Whether the managed settings (if any, and readable) allow demo mode."""
    from noojee_desk.core.profiles import managed

    return managed.load().rules.allow_demo


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--self-test" in argv:
        from noojee_desk.selftest import main as self_test

        return self_test([a for a in argv if a != "--self-test"])
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "sim":
        from noojee_desk.sim.server import main as sim_main

        return sim_main(rest)
    if args.command == "send":
        from noojee_desk.send import main as send_main

        if args.data_dir:
            rest = ["--data-dir", args.data_dir, *rest]
        return send_main(rest, log_to_file=True)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.demo and not demo_allowed():
        from noojee_desk.core.desk import DEMO_OFF

        print(f"noojee-desk: {DEMO_OFF} Start it without --demo.", file=sys.stderr)
        return 2
    from noojee_desk.app import run_app

    return run_app(args)
