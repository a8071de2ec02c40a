"""The daemon's arguments read without argparse (cli._plain_daemon_args) mean what argparse
reads from them: the plain reader may only decline (None), never disagree."""

import itertools

import pytest

from wgedge import cli

WORDS = ["-f", "--foreground", "-v", "--verbose", "--log", "/tmp/x.log", "wg0", "wan1", "-fv",
         "--fore", "--log=/tmp/y", "--", "-x", "--version"]


def _argparse(argv):
    try:
        args = cli.daemon_parser().parse_args(argv)
    except SystemExit:
        return "error"
    return (args.foreground, args.verbose, args.log, args.ifname)


def _plain(argv):
    args = cli._plain_daemon_args(argv)
    return None if args is None else (args.foreground, args.verbose, args.log, args.ifname)


def _argvs():
    for n in range(0, 5):
        for argv in itertools.product(WORDS, repeat=n):
            yield list(argv)


def test_plain_reader_agrees_with_argparse_or_declines(capsys):
    read = declined = 0
    for argv in _argvs():
        plain = _plain(argv)
        if plain is None:
            declined += 1
            continue
        read += 1
        assert plain == _argparse(argv), argv
    capsys.readouterr()  # argparse's complaints about the argvs it refused
    assert read > 500 and declined > 0, (read, declined)


@pytest.mark.parametrize("argv,expected", [
    (["-f", "wg0"], (True, False, None, "wg0")),
    (["-f", "-v", "--log", "/var/log/w.log", "wg0"], (True, True, "/var/log/w.log", "wg0")),
    (["wg0"], (False, False, None, "wg0")),
    (["--log", "x", "wg0", "-f"], (True, False, "x", "wg0")),
])
def test_how_the_watchdog_and_up_start_the_daemon_is_read_without_argparse(argv, expected):
    assert _plain(argv) == expected


@pytest.mark.parametrize("argv", [[], ["--help"], ["-fv", "wg0"], ["--log", "-f", "wg0"],
                                  ["wg0", "wg1"], ["--log=/x", "wg0"], ["--", "wg0"]])
def test_anything_else_goes_to_argparse(argv):
    assert _plain(argv) is None
