"""The `autograder` command line: one subcommand per job; it parses and forwards."""

from __future__ import annotations

import argparse
import sys

from autograder import __version__

EXAMPLES = """\
examples:
  autograder release      # nbgrader generate_assignment notebook10 -> release/notebook10/
  autograder solutions    # nbgrader generate_solution (executed) -> solutions/notebook10/
  autograder demo         # what `make demo` runs
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autograder", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"autograder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("release", help="generate the student version with nbgrader",
                   epilog="example:\n  autograder release", formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.add_parser("solutions", help="generate and execute the solutions with nbgrader",
                   epilog="example:\n  autograder solutions", formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.add_parser("demo", help="release, validate and show the blanks (make demo)",
                   epilog="example:\n  autograder demo", formatter_class=argparse.RawDescriptionHelpFormatter)
    args = parser.parse_args(argv)

    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "release":
            from autograder.assignment import generate_release

            print(f"wrote {generate_release()}")
        elif args.command == "solutions":
            from autograder.assignment import generate_solutions

            print(f"wrote {generate_solutions()}")
        elif args.command == "demo":
            from autograder import demo

            return demo.main()
    except RuntimeError as exc:
        print(f"autograder {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
