"""Text that is safe to print to a terminal or to write into Markdown: `printable(s)`.

What dlbench prints is partly other people's text: a suite file's note, names and skip reasons, a stored run's
ids and settings (a store is a file anyone may hand over), a worker's error message (a framework's, or a crafted
backend option's), a fingerprint's CPU model. A terminal obeys escape sequences in such text: it can be recoloured,
retitled (OSC 0), handed a hyperlink (OSC 8) or a clipboard write (OSC 52), have lines overwritten (CR, CSI cursor
moves) or, on some terminals, answer with input of its own. So every string on its way to a terminal or into
Markdown passes through `printable` at the output boundary (core/tables.py, runs/render.py, the run's progress
lines, the report's Markdown): ESC sequences (CSI, OSC, DCS, SOS, PM, APC and two-byte escapes, 7- and 8-bit)
are removed whole, and any other C0/C1 control character and DEL, as well as the Unicode bidirectional controls
that make a line read differently from what it holds. A tab becomes a space; a newline stays only where a field is
printed over several lines on purpose (`newlines=True`). HTML output escapes its text itself (html.escape) and JSON
escapes control characters, so neither needs this.
"""

from __future__ import annotations

import re

# An escape sequence, whole: what a terminal would consume as one command. An OSC/DCS/SOS/PM/APC string runs to its
# terminator (BEL, ST = ESC \ or the 8-bit ST) or, unterminated, to the end of the text, as a terminal would take it.
_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI: ESC [ parameters intermediates final
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # 8-bit CSI
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # the other escapes: ESC (intermediates) final, e.g. ESC c (reset), ESC ( 0
)
# Every control character left once sequences are gone (C0 but tab and newline, DEL, C1), and the bidirectional
# formatting characters (LRM/RLM, embeddings and overrides, isolates).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object, newlines: bool = False) -> str:
    """`text` (str() of anything) with no escape sequence or control character left: safe for a terminal or Markdown.
    Tabs become spaces; newlines become spaces too unless `newlines` (a field printed over several lines on purpose).
    """
    text = str(text)
    if text.isprintable():  # the common case, quickly (isprintable is False for any control or \n)
        return text
    text = _CONTROL.sub("", _SEQUENCE.sub("", text.replace("\r\n", "\n").replace("\t", " ")))
    return text if newlines else text.replace("\n", " ")


__all__ = ["printable"]
