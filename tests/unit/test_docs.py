"""Every command has help with an example and is named in the README."""

from __future__ import annotations

from shared_files import REPO
from vidsearch.cli import cli

README = (REPO / "README.md").read_text()


def test_every_command_has_help_with_an_example_and_is_in_the_readme():
    for name, command in cli.commands.items():
        assert command.help and "Example:" in command.help, name
        assert f"vidsearch {name}" in README, name


def test_every_global_option_is_documented():
    for param in cli.params:
        for option in param.opts:
            if option.startswith("--") and option != "--help":
                assert option in README, option
