"""Every subcommand explains itself: a description, examples, and the default of every option."""

import argparse

import pytest

from bench.cli import COMMANDS, build_parser


def subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_command_module_is_registered():
    assert len(subparsers()) == len(COMMANDS)


@pytest.mark.parametrize("name", sorted(subparsers()))
def test_help_has_description_examples_and_defaults(name):
    p = subparsers()[name]
    text = p.format_help()
    assert p.description, f"{name}: no description"
    assert "examples:" in text and f"vib-bench {name}" in text.split("examples:")[1], f"{name}: no examples"
    for action in p._actions:
        if action.option_strings:
            assert action.help, f"{name} {action.option_strings[0]}: no help"
        if not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
            continue
        if isinstance(action.default, list) and not action.default:
            continue
        assert action.help and "default" in p._get_formatter()._get_help_string(action), (
            f"{name} {action.option_strings[0]}: the help does not state its default"
        )
