"""Reads a kbench run directory's per-case HdrHistogram files back with HdrHistogram's Python
implementation (PyPI's `hdrhistogram`, HdrHistogram_py), and checks them against run.json:

- latency.hlog through `hdrh.log.HistogramLogReader`: every `Tag=` line decodes (the reader skips
  lines it cannot parse, so the intervals read are counted against the lines), and each tag's
  intervals add up to the summary's histogram of that stage (count, p50, p99, max);
- end_to_end.hgrm against the summed `e2e` intervals: the same mean, max, total count and
  sub-bucket count in its footer as `HdrHistogram.output_percentile_distribution` writes, and every
  row's cumulative TotalCount equal to the values the histogram holds up to the row's value. (Its
  rows' percentile levels are not compared: this port steps them geometrically where Java's
  HdrHistogram, whose rows kbench writes, halves the distance to 100% in fixed ticks; the
  results-format test compares the rows with Java's HistogramLogProcessor.)

Run by harness/tests/results_format.rs (`hdrhistogram_py_reads_the_files_back`):
    python hdrh_check.py RUN_DIR
Exits non-zero with the first mismatch; prints one line per case otherwise.
"""

import io
import json
import os
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

# The summary field each interval-log tag adds up to (docs/RESULTS-FORMAT.md).
TAG_FIELDS = {
    "e2e": "end_to_end_ns",
    "e2e_actual": "end_to_end_actual_ns",
    "send": "send_ns",
    "queue": "queue_ns",
    "compress": "compress_ns",
    "write": "write_ns",
    "sync": "sync_ns",
    "batch_records": "batch_records",
    "batch_bytes": "batch_bytes",
    "compression_ratio_permille": "batch_compression_ratio_permille",
}

# kbench's histograms: 1 ns to 1 hour, 3 significant digits.
LOWEST, HIGHEST, DIGITS = 1, 3_600_000_000_000, 3


def fail(message):
    print("hdrh_check: " + message, file=sys.stderr)
    sys.exit(1)


def read_log(path):
    """The intervals of the log, summed per tag, and how many were read."""
    with open(path, encoding="ascii") as f:
        tagged_lines = sum(1 for line in f if line.startswith("Tag="))
    reader = HistogramLogReader(path, HdrHistogram(LOWEST, HIGHEST, DIGITS))
    sums = {}
    read = 0
    while True:
        interval = reader.get_next_interval_histogram()
        if interval is None:
            break
        read += 1
        tag = interval.get_tag()
        if tag not in TAG_FIELDS:
            fail(f"{path}: tag {tag!r} is not one of the documented tags {sorted(TAG_FIELDS)}")
        total = sums.setdefault(tag, HdrHistogram(LOWEST, HIGHEST, DIGITS))
        total.add(interval)
    if read != tagged_lines:
        fail(f"{path}: HistogramLogReader read {read} intervals of {tagged_lines} Tag= lines")
    return sums, read


def rows_and_footer(text):
    """The percentile rows (as token lists) and the footer's `#[` lines of a .hgrm."""
    rows, footer = [], {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("Value"):
            continue
        if stripped.startswith("#["):
            for part in stripped.strip("#[]").split(","):
                name, _, value = part.partition("=")
                footer[name.strip()] = float(value)
            continue
        rows.append(stripped.split())
    return rows, footer


def check_case(run_dir, case):
    summary = case["summary"]
    files = case["files"]
    sums, read = read_log(os.path.join(run_dir, files["hlog"]))
    for tag, field in TAG_FIELDS.items():
        want = summary[field]
        got = sums.get(tag)
        count = got.get_total_count() if got else 0
        if count != want["count"]:
            fail(f"{case['id']}: tag {tag}: {count} values in the log, summary.{field}.count {want['count']}")
        if count == 0:
            continue
        for pct, key in ((50, "p50"), (99, "p99")):
            # HdrHistogram_py rounds the percentile's count to the nearest value where Java's (and
            # the Rust crate's) take the ceiling: the two may be one value apart.
            either = {got.get_value_at_percentile(pct), got.get_value_at_percentile(min(100.0, pct + 100.0 / count))}
            if want[key] not in either:
                fail(f"{case['id']}: tag {tag}: p{pct} {sorted(either)}, summary {want[key]}")
        if got.get_max_value() != want["max"]:
            fail(f"{case['id']}: tag {tag}: max {got.get_max_value()}, summary {want['max']}")

    e2e = sums.get("e2e")
    if e2e is None:
        fail(f"{case['id']}: no e2e interval in the log")
    expected = io.BytesIO()
    e2e.output_percentile_distribution(expected, 1_000_000.0, 5)
    want_rows, want_footer = rows_and_footer(expected.getvalue().decode("ascii"))
    with open(os.path.join(run_dir, files["hgrm"]), encoding="ascii") as f:
        hgrm = f.read()
    header = hgrm.splitlines()[0].split()
    if header != ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]:
        fail(f"{case['id']}: .hgrm header {header}")
    got_rows, got_footer = rows_and_footer(hgrm)
    # Each row's TotalCount: the values up to its value (HdrHistogram_py's recorded iterator).
    # Values print in ms to 3 decimals, so neighbouring buckets can print alike: any of them counts.
    at_ms = {}
    for item in e2e.get_recorded_iterator():
        key = "%.*f" % (DIGITS, item.value_iterated_to / 1_000_000.0)
        at_ms.setdefault(key, set()).add(item.total_count_to_this_value)
    for i, row in enumerate(got_rows):
        want = at_ms.get(row[0], set())
        if int(row[2]) not in want:
            fail(f"{case['id']}: .hgrm row {i + 1} {row}: HdrHistogram counts {sorted(want)} values up to {row[0]} ms")
    # HdrHistogram_py writes `TotalCount` where Java writes `Total count`, and leaves the standard
    # deviation unscaled: the figures are compared, not the spelling.
    checks = [
        ("Mean", got_footer.get("Mean"), want_footer.get("Mean")),
        ("Max", got_footer.get("Max"), want_footer.get("Max")),
        ("Total count", got_footer.get("Total count"), want_footer.get("TotalCount")),
        ("SubBuckets", got_footer.get("SubBuckets"), want_footer.get("SubBuckets")),
        ("StdDeviation", got_footer.get("StdDeviation"), round(e2e.get_stddev() / 1_000_000.0, DIGITS)),
    ]
    for name, got, want in checks:
        if got is None or want is None or abs(got - want) > 0.0015:
            fail(f"{case['id']}: .hgrm footer {name}: kbench {got}, HdrHistogram {want}")
    return read, len(got_rows), len(want_rows)


def main():
    if len(sys.argv) != 2:
        fail("usage: hdrh_check.py RUN_DIR")
    run_dir = sys.argv[1]
    with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as f:
        run = json.load(f)
    cases = [c for c in run["cases"] if c["status"] == "ok"]
    if not cases:
        fail(f"{run_dir}: no case with status ok to check")
    for case in cases:
        intervals, rows, _ = check_case(run_dir, case)
        print(f"hdrh_check: {case['id']}: {intervals} intervals read, {rows} .hgrm rows counted as HdrHistogram counts")


if __name__ == "__main__":
    main()
