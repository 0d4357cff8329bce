"""The characters Kaldi allows in a data dir's ``text`` (validate_data_dir.sh, validate_text.pl).

Kaldi's tools split transcripts on ASCII space and TAB only, so any other whitespace silently
glues or splits words; a carriage return is a Windows line end that becomes part of the last
word; non-printable characters are invisible in logs and lexicons; ``<s>``, ``</s>`` and ``#0``
are reserved by the language model and the decoding graph.
"""
from __future__ import annotations

import re
import unicodedata

from pase.io.datadir import WS, WS_CHARS

# Unicode White_Space (perl's \s in validate_text.pl) less TAB, LF and SPACE; CR has its own
# message.
_OTHER_SPACE = frozenset("\v\f\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
                         + "".join(map(chr, range(0x2000, 0x200B))))
# grep -w in the C locale: not inside a run of ASCII letters, digits and underscores.
_RESERVED = re.compile(r"(?<![A-Za-z0-9_])(?:<s>|</s>|#0)(?![A-Za-z0-9_])")


def non_printable(ch: str) -> bool:
    """Whether ``ch`` is ``[^[:print:][:space:]]`` in glibc's C.UTF-8, which Kaldi greps for.

    That is a control character other than TAB, LF, VT, FF and CR, or an unassigned code
    point (Python 3.11 and glibc 2.36 both use Unicode 14). Kaldi's script looks for that
    locale with ``locale -a | grep C.UTF-8``, which misses glibc's own spelling ``C.utf8``;
    without en_US.UTF-8 its grep then runs in the C locale and rejects every non-ASCII
    character. We keep the rule it means, so non-English transcripts pass.
    """
    category = unicodedata.category(ch)
    return category == "Cn" or (category == "Cc" and ch not in "\t\n\v\f\r")


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")  # control characters have none
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def text_errors(name: str, content: str, *, non_print: bool = False) -> list[str]:
    """``file:line:`` errors for the characters of ``content``, the text file called ``name``.

    ``non_print`` (Kaldi's --non-print) allows non-printable characters.
    """
    errors = []
    for lineno, line in enumerate(content.split("\n"), 1):
        if not line.strip(WS_CHARS):
            continue  # blank lines are the line reader's error
        where = f"{name}:{lineno}: utterance {WS.split(line.strip(WS_CHARS))[0]!r}:"
        if "\r" in line:
            errors.append(f"{where} carriage return (CR); save the file with Unix line ends")
        space = next((c for c in line if c in _OTHER_SPACE), None)
        if space is not None:
            errors.append(f"{where} whitespace {_describe(space)}; Kaldi splits words on "
                          "ASCII space and TAB only")
        odd = None if non_print else next((c for c in line if non_printable(c)), None)
        if odd is not None:
            errors.append(f"{where} non-printable character {_describe(odd)} "
                          "(or pass --non-print)")
        reserved = _RESERVED.search(line)
        if reserved:
            errors.append(f"{where} {reserved.group()!r} is reserved (language model and "
                          "decoding graph symbol)")
    return errors
