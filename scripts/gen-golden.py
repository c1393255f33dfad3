#!/usr/bin/env python3
"""Writes golden RecordBatch v2 segment files with kafka-python, a Kafka-conformant writer that is not
kbench's code, for engine/tests/record_golden.rs.

Run once; the output is committed:
    python3 -m venv /tmp/kpy && /tmp/kpy/bin/pip install kafka-python python-snappy lz4 zstandard
    /tmp/kpy/bin/python scripts/gen-golden.py engine/tests/fixtures

Each codec gets `kafka-python-<codec>.log` holding three batches back to back, as a broker would store
them after assigning offsets (baseOffset 0, 5, 9) and its leader epoch (7; neither field is under the
CRC). The records follow the rules in `record()` below, which the Rust test mirrors exactly.
"""
import struct
import sys
from pathlib import Path

from kafka.record.default_records import DefaultRecordBatchBuilder, DefaultRecordBatch

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
BASE_TIMESTAMP = 1_700_000_000_000
TIMESTAMP_JITTER = [0, 5, 3, 12, 7]
# (baseOffset, producerId, producerEpoch, baseSequence, transactional, record count)
BATCHES = [(0, -1, -1, -1, False, 5), (5, 4242, 3, 17, False, 4), (9, 4242, 3, 21, True, 2)]
LEADER_EPOCH = 7


def big_value():
    # ~100 KB of compressible text: spans several snappy (32 KiB) and lz4 (64 KiB) blocks.
    return b"".join(b"%08d kafka record payload\n" % j for j in range(3600))


def record(b, i):
    timestamp = BASE_TIMESTAMP + b * 1000 + TIMESTAMP_JITTER[i % 5]
    key = None if i % 3 == 1 else b"key-%d-%d" % (b, i)
    if b == 0 and i == 4:
        value = None
    elif b == 1 and i == 1:
        value = big_value()
    else:
        value = b"value %d %d " % (b, i) * 20
    headers = [("h1", b"v1"), ("null", None)] if i % 2 == 0 else []
    return timestamp, key, value, headers


def main(out_dir):
    out_dir = Path(out_dir)
    for name, codec in CODECS.items():
        segment = bytearray()
        for b, (base_offset, pid, epoch, seq, txn, count) in enumerate(BATCHES):
            builder = DefaultRecordBatchBuilder(
                magic=2, compression_type=codec, is_transactional=txn,
                producer_id=pid, producer_epoch=epoch, base_sequence=seq, batch_size=1 << 20)
            for i in range(count):
                timestamp, key, value, headers = record(b, i)
                assert builder.append(i, timestamp, key, value, headers) is not None
            batch = bytearray(builder.build())
            # What the broker does on append: assign the offset and stamp its leader epoch.
            struct.pack_into(">q", batch, 0, base_offset)
            struct.pack_into(">i", batch, 12, LEADER_EPOCH)
            parsed = DefaultRecordBatch(bytes(batch))
            assert parsed.validate_crc(), name
            assert parsed.compression_type == codec, (name, "kafka-python fell back to no compression")
            segment += batch
        (out_dir / ("kafka-python-%s.log" % name)).write_bytes(segment)
        print("wrote", name, len(segment), "bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "engine/tests/fixtures")
