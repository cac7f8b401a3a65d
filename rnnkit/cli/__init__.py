"""The ``rnnkit`` command line (``rnnkit.cli:main`` is the console entry point)."""
from rnnkit.cli.main import COMMANDS, all_commands, build_parser, main

__all__ = ["COMMANDS", "all_commands", "build_parser", "main"]
