"""`deskpulse sentiment`: score JSON lines from stdin, one JSON line out per line in.

    $ echo '{"text": "非常满意"}' | deskpulse sentiment
    {"score": 0.7371, "label": "positive", "lang": "zh"}

A line that cannot be scored gives {"error": "line N: ..."} in its place, so output line N
always answers input line N. Each line is flushed, so the command works inside a pipe.
"""

import argparse
import json
import os
import sys
from typing import BinaryIO, TextIO

from deskpulse.sentiment.scorer import score_comment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Score comments read as JSON lines on stdin; write one JSON line per input line, "
        'in order: {"score", "label", "lang"}, or {"error"} for a line that cannot be '
        "scored. Exit status 1 when any line was an error."
    )
    parser.add_argument(
        "--field",
        default="text",
        help="name of the field holding the comment (default: text; survey events: comment)",
    )


def answer(number: int, raw: bytes, field: str) -> dict:
    """The output object for one input line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return {"error": f"line {number}: not UTF-8 ({exc.reason} at byte {exc.start})"}
    line = line.strip()
    if not line:
        return {"error": f"line {number}: empty line, expected a JSON object"}
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return {"error": f"line {number}: not JSON ({exc})"}
    if not isinstance(doc, dict):
        return {"error": f"line {number}: expected a JSON object, got {type(doc).__name__}"}
    if field not in doc:
        return {"error": f"line {number}: missing field '{field}'"}
    text = doc[field]
    if not isinstance(text, str) or not text:
        got = json.dumps(text, ensure_ascii=False)
        if len(got) > 60:
            got = got[:57] + "..."
        return {"error": f"line {number}: field '{field}' must be a non-empty string, got {got}"}
    try:
        s = score_comment(text)
    except Exception as exc:  # a bug must cost one line, not the pipe
        return {"error": f"line {number}: could not score ({type(exc).__name__}: {exc})"}
    return {"score": s.score, "label": s.label, "lang": s.lang}


def run(
    args: argparse.Namespace, stdin: BinaryIO | None = None, stdout: TextIO | None = None
) -> int:
    """Score stdin to stdout; returns the exit status (0, or 1 if any line was an error)."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout
    field = getattr(args, "field", "text")
    status = 0
    try:
        for number, raw in enumerate(stdin, 1):
            out = answer(number, raw, field)
            status = status or ("error" in out)
            stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
            stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other filters do; point stdout
        # at /dev/null so that the flush at exit does not raise again.
        if stdout is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return int(status)


def main() -> int:
    parser = argparse.ArgumentParser(prog="deskpulse sentiment")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
