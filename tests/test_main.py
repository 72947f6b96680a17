"""The command line: every command's --help and -h print help and start nothing."""

from __future__ import annotations

import pytest

from t2d_monai.__main__ import COMMANDS, main


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_prints_and_starts_nothing(name, flag, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a command that started would write here (benchmark_output/, data/, ...)
    try:
        main([name, flag, "--out_dir", "x"])
    except SystemExit as e:
        assert e.code in (0, None)
    captured = capsys.readouterr()
    text = captured.out + captured.err  # fire writes its help to stderr when there is no terminal
    assert "NAME" in text and f"{name} - " in text
    assert list(tmp_path.iterdir()) == []


def test_usage_lists_every_command(capsys):
    main([])
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
