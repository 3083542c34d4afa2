"""Progress in a log: plain lines every few seconds, never tqdm's carriage returns."""

import io

from pilot.progress import Progress


def test_log_lines_instead_of_a_bar_when_not_a_terminal():
    out = io.StringIO()
    bar = Progress(total=10, desc="eval", unit="ep", stream=out, interval=0.0)
    bar.update(3)
    bar.set_postfix_str("return 2.0")
    bar.update(2)
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0].startswith("eval: 3/10 ep (30%)")
    assert lines[1].startswith("eval: 5/10 ep (50%)") and lines[1].endswith("return 2.0")
    assert lines[-1].startswith("eval: 5/10 ep (50%)")  # the closing line
    assert "eta" in lines[0]


def test_lines_are_spaced_by_the_interval():
    out = io.StringIO()
    bar = Progress(total=1000, stream=out, interval=3600.0)
    for _ in range(1000):
        bar.update()
    assert out.getvalue() == ""  # an hour has not passed
    bar.close()
    assert out.getvalue().count("\n") == 1
    assert bar.n == 1000


def test_disabled_counts_but_prints_nothing():
    out = io.StringIO()
    bar = Progress(total=5, stream=out, enabled=False, interval=0.0)
    bar.update(5)
    bar.total = 7
    bar.close()
    assert out.getvalue() == "" and bar.n == 5 and bar.total == 7


def test_a_terminal_gets_the_tqdm_bar():
    out = io.StringIO()
    bar = Progress(total=4, desc="train", stream=out, tty=True)
    bar.update(4)
    bar.close()
    assert "\r" in out.getvalue() and "4/4" in out.getvalue()
