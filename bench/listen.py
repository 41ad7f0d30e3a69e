"""Listener figures for event logs: what a person wearing the camera would hear.

    python bench/listen.py demo.jsonl walk.jsonl [--json out.json]

Per log: utterances started, words, the longest warning in seconds, talk
share (seconds speaking / seconds of input; also for warnings and for
descriptions alone), when the first description heard whole started (one
cut off does not count), drops by reason, and utterances that name one
object twice. Make the logs with ``--every-frame --speech none`` so that they are deterministic
and every utterance lasts its estimated time on the video clock.

A warning is an ``important`` or ``message`` utterance that is not a state
notice (``state`` field). An utterance names an object twice when its
``objects`` (track ids, logged by the announcer) repeat, or, in logs without
them, when two of its sentences start with the same class word ("Bus ahead,
approaching. Bus ahead, very near.").
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

WARNING_LEVELS = ("important", "message")


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of a JSON Lines log (unparseable lines are skipped)."""
    events = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


def _names_an_object_twice(start: dict[str, Any]) -> bool:
    objects = start.get("objects")
    if isinstance(objects, list) and objects:
        return len(objects) != len(set(objects))
    sentences = [s for s in re.split(r"[.!?]\s+", str(start.get("text") or "")) if s.strip()]
    heads = []
    for s in sentences:
        words = re.findall(r"\w+", s.lower())
        # Skip count words and articles: "Two people", "Une personne".
        while words and words[0] in {"a", "an", "two", "three", "un", "une", "des", "deux", "trois", "zwei",
                                     "drei", "dos", "tres"}:
            words = words[1:]
        if words:
            heads.append(words[0])
    return len(heads) != len(set(heads))


def listen_figures(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The listener figures of one log (see module doc)."""
    speech = [e for e in events if e.get("type") == "speech"]
    starts: list[dict[str, Any]] = []
    durations: list[tuple[dict[str, Any], float]] = []
    open_starts: list[dict[str, Any]] = []
    heard: list[dict[str, Any]] = []  # starts of utterances said to their end (not cut off)
    for e in speech:
        ev = e.get("event")
        if ev == "start":
            starts.append(e)
            open_starts.append(e)
        elif ev in ("end", "interrupted"):
            for i, s in enumerate(open_starts):
                if s.get("text") == e.get("text"):
                    durations.append((s, float(e["t"]) - float(s["t"])))
                    if ev == "end":
                        heard.append(s)
                    del open_starts[i]
                    break
    end_input = [e for e in events if e.get("type") == "status" and e.get("event") == "end_of_input"]
    frames = [e["t"] for e in events if e.get("frame") is not None and e.get("type") in ("hazard", "caption", "gate")]
    if end_input:
        input_s = float(end_input[0]["t"])
    elif frames:
        input_s = float(max(frames))
    else:
        input_s = float(max((e.get("t", 0.0) for e in events), default=0.0))
    talk_s = sum(d for _, d in durations)
    warnings = [(s, d) for s, d in durations if s.get("priority") in WARNING_LEVELS and "state" not in s]
    longest = max(warnings, key=lambda sd: sd[1], default=None)
    # The first description a listener heard whole: one cut off after a few words does not count.
    first_caption = min((s for s in heard if s.get("priority") == "text"), key=lambda s: float(s["t"]), default=None)
    dropped: dict[str, int] = {}
    dropped_warnings: dict[str, int] = {}
    for e in speech:
        if e.get("event") == "dropped":
            reason = str(e.get("reason"))
            dropped[reason] = dropped.get(reason, 0) + 1
            if e.get("priority") in WARNING_LEVELS and "state" not in e:
                dropped_warnings[reason] = dropped_warnings.get(reason, 0) + 1
    twice = [s["text"] for s in starts if _names_an_object_twice(s)]
    warn_s = sum(d for _, d in warnings)
    text_s = sum(d for s, d in durations if s.get("priority") == "text")
    camera = [s["text"] for s in starts if s.get("state") == "camera"]
    return {
        "utterances": len(starts),
        "words": sum(len(re.findall(r"\w+", str(s.get("text") or ""))) for s in starts),
        "warnings": len(warnings),
        "longest_warning_s": round(longest[1], 2) if longest else 0.0,
        "longest_warning": longest[0]["text"] if longest else None,
        "speaking_s": round(talk_s, 2),
        "input_s": round(input_s, 2),
        "talk_share": round(talk_s / input_s, 3) if input_s > 0 else None,
        "warning_share": round(warn_s / input_s, 3) if input_s > 0 else None,
        "description_share": round(text_s / input_s, 3) if input_s > 0 else None,
        "first_description_s": round(float(first_caption["t"]), 2) if first_caption else None,
        "dropped": dict(sorted(dropped.items())),
        "dropped_warnings": dict(sorted(dropped_warnings.items())),
        "names_an_object_twice": twice,
        "last_camera_notice": camera[-1] if camera else None,
    }


def format_table(rows: dict[str, dict[str, Any]]) -> str:
    """A plain-text table, one row per log."""
    head = ["log", "utt", "words", "longest warn s", "talk share (warn/descr)", "first descr s", "dropped (warnings)",
            "twice"]
    lines = [head]
    for name, f in rows.items():
        drops = ", ".join(f"{k} {v}" for k, v in f["dropped"].items()) or "-"
        wdrops = ", ".join(f"{k} {v}" for k, v in f["dropped_warnings"].items())
        lines.append([name, str(f["utterances"]), str(f["words"]), f"{f['longest_warning_s']:.2f}",
                      "-" if f["talk_share"] is None else
                      f"{f['talk_share']:.2f} ({f['warning_share']:.2f}/{f['description_share']:.2f})",
                      "-" if f["first_description_s"] is None else f"{f['first_description_s']:.2f}",
                      drops + (f" ({wdrops})" if wdrops else ""), str(len(f["names_an_object_twice"]))])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines)


def main(argv: list[str] | None = None) -> int:
    """Print the figures of each log as a table (and JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", nargs="+", type=Path, help="event logs (JSON Lines)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here ('-' = stdout)")
    args = ap.parse_args(argv)
    rows: dict[str, dict[str, Any]] = {}
    for path in args.logs:
        if not path.is_file():
            print(f"error: {path}: no such log file (make one with run.py --log PATH)", file=sys.stderr)
            return 2
        rows[path.name] = listen_figures(read_events(path))
    print(format_table(rows))
    if args.json is not None:
        text = json.dumps(rows, indent=2, ensure_ascii=False)
        if str(args.json) == "-":
            print(text)
        else:
            args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
