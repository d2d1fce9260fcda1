"""Every command has help with an example and is named in the README; every project file the docs and the code
point users to exists."""

from __future__ import annotations

import re

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


def test_every_project_file_named_in_the_readme_or_the_code_exists():
    named = re.compile(r"\b(?:scripts|tests|migrations|data)/[\w./-]+\.(?:py|md|json|yaml|toml)\b")
    texts = {"README.md": README, **{str(path.relative_to(REPO)): path.read_text()
                                      for path in (REPO / "vidsearch").rglob("*.py")}}
    missing = [(where, path) for where, text in texts.items() for path in named.findall(text)
               if not (REPO / path).exists()]
    assert missing == []
