#!/usr/bin/env bash
# The librdkafka backend against librdkafka itself: the same records produced by Debian's kcat and
# by `kbench run` (engine.kind: kafka), each to a fresh in-process mock cluster of one broker, one
# partition, batch.size 1000000, linger.ms 5, acks 1, interleaved kcat, kbench, kcat, kbench ...
# Prints each run and the medians; kbench should reach at least 0.9x kcat's records/s.
#
#   bash scripts/kafka-baseline.sh [RECORDS] [PAIRS]     (default 1000000 records, 3 pairs)
#
# Both may queue 1 GiB (librdkafka's default queue.buffering.max.kbytes; kbench passes buffer.memory
# as that, so the workload sets buffer.memory to 1 GiB): neither waits for queue space, so the figures
# compare the per-record cost, not each tool's back-off when the queue is full (with kbench's default
# buffer.memory, Java's 32 MiB, kbench waited for queue space where kcat, at 1 GiB, never did).
# kcat's figure is records / wall time of the whole process (start, mock cluster, final flush);
# kbench's is records / wall time of the same process run, beside its own measured-phase records/s.
# Installs kcat (Debian) when missing; builds kbench with --features kafka (release).
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
pairs=${2:-3}
if ! command -v kcat >/dev/null; then
  echo "kafka-baseline: installing Debian's kcat" >&2
  apt-get install -y -qq kcat >/dev/null
fi
cargo build --release --locked -q -p kbench --features kafka
kbench=target/release/kbench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# 100-byte values, one per line (kcat splits its input on newlines).
python3 - "$records" > "$work/values.txt" <<'EOF'
import random, string, sys
n = int(sys.argv[1])
rnd = random.Random(7)
alphabet = string.ascii_letters + string.digits
line = "".join(rnd.choice(alphabet) for _ in range(100))
out = sys.stdout
for i in range(n):
    out.write(line[i % 100:] + line[:i % 100] + "\n")
EOF
cat > "$work/w.yaml" <<EOF
name: kafka-baseline
engine: { kind: kafka, bootstrap.servers: 'mock:1' }
topic: { name: baseline, partitions: 1 }
producer: { threads: 1, acks: "1", batch.size: 1000000, linger.ms: 5, buffer.memory: 1073741824, enable.idempotence: false, compression.type: none }
records: { count: $records, warmup: 0s, value: { size: 100, payload: random } }
EOF
now() { date +%s.%N; }
kcat_rates=() kbench_rates=() kbench_measured=()
for i in $(seq 1 "$pairs"); do
  t0=$(now)
  kcat -P -q -b 127.0.0.1:1 -X test.mock.num.brokers=1 -t baseline -p 0 \
    -X linger.ms=5 -X batch.size=1000000 -X acks=1 -X queue.buffering.max.messages=1000000 \
    -X queue.buffering.max.kbytes=1048576 \
    -l "$work/values.txt"
  t1=$(now)
  k=$(python3 -c "print(f'{$records / ($t1 - $t0):.0f}')")
  kcat_rates+=("$k")
  t0=$(now)
  "$kbench" run "$work/w.yaml" --out "$work/run-$i" --quiet
  t1=$(now)
  b=$(python3 -c "print(f'{$records / ($t1 - $t0):.0f}')")
  m=$(python3 -c "import json; print(f\"{json.load(open('$work/run-$i/run.json'))['cases'][0]['summary']['records_per_sec']:.0f}\")")
  kbench_rates+=("$b") kbench_measured+=("$m")
  echo "pair $i: kcat $k records/s (wall); kbench $b records/s (wall), $m records/s (measured phase)"
done
python3 - "${kcat_rates[*]}" "${kbench_rates[*]}" "${kbench_measured[*]}" <<'EOF'
import statistics, sys
k, b, m = ([float(x) for x in a.split()] for a in sys.argv[1:4])
mk, mb, mm = statistics.median(k), statistics.median(b), statistics.median(m)
print(f"medians: kcat {mk:,.0f} records/s, kbench {mb:,.0f} records/s wall ({mb / mk:.2f}x kcat), "
      f"{mm:,.0f} records/s in its measured phase ({mm / mk:.2f}x)")
EOF
