"""The code blocks of a Markdown guide, and the commands of its bash blocks as words: what the
documentation tests run or check against the real tools."""

from __future__ import annotations

import re
import shlex


def blocks(language: str, text: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def shell_lines(text: str) -> list[list[str]]:
    """Each command of the bash blocks as words: continuations joined, comments and env dropped."""
    out = []
    for block in blocks("bash", text):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]) or words[:1] == ["export"]:
                words = words[1:]
            if words:
                out.append(words)
    return out
