"""Text from the database or the disk (people's names, file names, error messages that quote them) made safe to print
on a terminal: every printer of the command line passes what it did not write itself through `printable`.

A name like "\x1b[2J\x1b]0;pwned\x07" would otherwise clear the screen and retitle the window, and an RTL override
would show "gnp.exe" as "exe.png". They are shown as the escapes they are (\x1b, \u202e) instead.
"""

from __future__ import annotations

import re

# C0 and C1 control characters (ESC starts a terminal's commands; CR and BS overwrite what was printed; DEL), and the
# bidirectional controls that reorder what follows them.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text, lines: bool = False) -> str:
    """`text` as str with its control characters shown as escapes; `lines`: newlines are kept (a report's lines)."""
    return (_UNSAFE_BUT_NEWLINE if lines else _UNSAFE).sub(_escape, str(text))
