#!/usr/bin/env python3
"""Where PostgreSQL's time goes in a `LOG_STATEMENTS=1` run of bench/run.sh.

Reads PostgreSQL's log (the part written during the run: `tail -c +OFFSET`), sums the
logged durations (parse, bind, execute) of each kind of statement and prints each kind's
share, executions, and milliseconds per order when `--orders N` is given. The durations
are wall time inside PostgreSQL with logging on: a COMMIT's includes its wait for the WAL
flush, so read the shares, not the absolute times.

    python3 bench/statement-shares.py RUN.log --orders 16000
"""
import argparse
import collections
import re

LINE = re.compile(r"duration: ([0-9.]+) ms  (parse|bind|execute|statement)[^:]*: (.*)")

# First match wins: what each statement is for in the order path.
KINDS = [
    ("COMMIT", lambda s: s.startswith("COMMIT")),
    ("BEGIN", lambda s: s.startswith("BEGIN")),
    ("log appends (a group commit's events)", lambda s: s.startswith("WITH input AS")),
    ("single-stream appends", lambda s: s.startswith("WITH current AS")),
    ("stream-tail reads (pricing, stocks)", lambda s: s.startswith("SELECT t.n, e.position")),
    (
        "log high-water checks and in-flight waits",
        lambda s: s.startswith("WITH taken AS") or "pg_locks" in s,
    ),
    ("log reads by followers", lambda s: s.startswith("SELECT position, stream_id")),
    ("projection checkpoints", lambda s: "projection_checkpoints" in s),
    ("read-model statements", lambda s: re.search(r"\brm_\w+", s) is not None),
    ("notifications", lambda s: "NOTIFY" in s or "pg_notify" in s),
    ("idempotency keys", lambda s: "idempotency_keys" in s),
]


def kind_of(sql: str) -> str:
    for name, matches in KINDS:
        if matches(sql):
            return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", help="PostgreSQL's log of the run")
    parser.add_argument("--orders", type=int, help="orders the run placed (for ms per order)")
    args = parser.parse_args()
    time = collections.Counter()
    executions = collections.Counter()
    with open(args.log, errors="replace") as log:
        for line in log:
            found = LINE.search(line)
            if not found:
                continue
            ms, phase, sql = float(found.group(1)), found.group(2), found.group(3).strip()
            kind = kind_of(sql)
            time[kind] += ms
            if phase in ("execute", "statement"):
                executions[kind] += 1
    total = sum(time.values()) or 1.0
    header = "| kind | share | executions | ms per order |" if args.orders else "| kind | share | executions |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for kind, ms in time.most_common():
        row = f"| {kind} | {100 * ms / total:.1f} % | {executions[kind]:,} |"
        if args.orders:
            row += f" {ms / args.orders:.3f} |"
        print(row)
    print(f"\ntotal {total / 1000:.1f} s of statement time")


if __name__ == "__main__":
    main()
