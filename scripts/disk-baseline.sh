#!/usr/bin/env bash
# Disk baseline: fio and kbench's log writer with the same pattern on the same directory, side by side.
#   scripts/disk-baseline.sh [DIR] [SIZE_MiB]      (default: ./target/disk-baseline, 4096 MiB)
# Patterns: 1 MiB sequential writes, O_DIRECT and buffered (one fsync at the end, as fio's
# end_fsync); and 4 KiB writes with an fdatasync after every write (fio, one writer) against the log
# with flush.messages=1 and 8 threads appending asynchronously (group commit). Targets (issue 3):
# kbench >= 95% of fio's MB/s in the same mode; group commit >= 20x fio's fsyncs/s in records/s.
# Then sequential reads from a cold page cache: fio 1 MiB buffered reads against a kbench Consumer
# reading the log back (issue 7). The fio figures go to results/disk-baseline.json, where `kbench
# run` picks them up as the report's reference lines.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-target/disk-baseline}
SIZE_MIB=${2:-4096}
mkdir -p "$DIR"
if ! command -v fio >/dev/null; then
  echo "fio not found: installing it from Debian's packages" >&2
  apt-get update && apt-get install -y fio
fi
cargo build --locked --release -q -p kbench-engine --example log_disk
KB=target/release/examples/log_disk
BYTES=$((SIZE_MIB * 1024 * 1024))

echo "machine: $(nproc) cpus, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(uname -r)"
echo "directory: $(realpath "$DIR") on $(df -T "$DIR" | awk 'NR==2 {print $1" ("$2")"}')"

fio_json() { fio --output-format=json "$@" 2>/dev/null; }
fio_field() { python3 -c "import json,sys; j=json.load(sys.stdin)['jobs'][0]['${FIO_DIR:-write}']; print($1)"; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || echo "(page cache not dropped: needs root)" >&2; }
kb_field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

compare() { # name, fio args..., -- kbench args...
  local name=$1; shift
  local fio_args=() kb_args=()
  while [[ $1 != -- ]]; do fio_args+=("$1"); shift; done; shift
  kb_args=("$@")
  rm -f "$DIR"/fio.*
  local f_mbps
  f_mbps=$(fio_json --name=fio --directory="$DIR" --size="${SIZE_MIB}M" "${fio_args[@]}" | fio_field "round(j['bw_bytes']/1e6,1)")
  rm -f "$DIR"/fio.*
  sync
  local k_out k_mbps
  k_out=$($KB --dir "$DIR" --bytes "$BYTES" "${kb_args[@]}")
  k_mbps=$(echo "$k_out" | kb_field MBps)
  printf '%-28s fio %8s MB/s   kbench %8s MB/s   kbench/fio %s%%\n' "$name" "$f_mbps" "$k_mbps" \
    "$(python3 -c "print(round(100*$k_mbps/$f_mbps))")"
  LAST_FIO_MBPS=$f_mbps
}

echo
echo "== sequential writes, 1 MiB (target: kbench >= 95% of fio)"
compare "io_uring O_DIRECT" --rw=write --bs=1M --direct=1 --ioengine=io_uring --iodepth=16 --end_fsync=1 \
  -- --io io_uring --bs 1048576 --direct
disk_write_mbps=$LAST_FIO_MBPS
compare "pwrite O_DIRECT" --rw=write --bs=1M --direct=1 --ioengine=psync --end_fsync=1 \
  -- --io pwrite --bs 1048576 --direct
compare "io_uring buffered" --rw=write --bs=1M --direct=0 --ioengine=io_uring --iodepth=16 --end_fsync=1 \
  -- --io io_uring --bs 1048576
compare "pwrite buffered" --rw=write --bs=1M --direct=0 --ioengine=psync --end_fsync=1 \
  -- --io pwrite --bs 1048576

echo
echo "== fsync after every message, 4 KiB (target: kbench records/s >= 20x fio fsyncs/s)"
rm -f "$DIR"/fio.*
f_iops=$(fio_json --name=fio --directory="$DIR" --size=256M --runtime=10 --time_based=0 --rw=write --bs=4k \
  --ioengine=psync --fdatasync=1 | fio_field "round(j['iops'],1)")
rm -f "$DIR"/fio.*
k_out=$($KB --dir "$DIR" --bytes $((64 * 1024 * 1024)) --io io_uring --bs 4096 --records 1 --flush-messages 1 \
  --producers 8 --inflight 64)
k_rps=$(echo "$k_out" | kb_field records_per_s)
k_fps=$(echo "$k_out" | kb_field fsyncs_per_s)
printf 'fio 4 KiB write+fdatasync: %s fsyncs/s\n' "$f_iops"
printf 'kbench flush.messages=1, 8 threads: %s records/s (%s fsyncs/s)   ratio %sx\n' "$k_rps" "$k_fps" \
  "$(python3 -c "print(round($k_rps/$f_iops,1))")"

echo
echo "== sequential reads, cold page cache: fio 1 MiB buffered reads vs a kbench Consumer reading the log"
rm -f "$DIR"/fio.*
fio --name=fio --directory="$DIR" --size="${SIZE_MIB}M" --rw=write --bs=1M --ioengine=psync --end_fsync=1 >/dev/null 2>&1
drop_caches
f_read=$(FIO_DIR=read fio_field "round(j['bw_bytes']/1e6,1)" < <(fio_json --name=fio --directory="$DIR" \
  --size="${SIZE_MIB}M" --rw=read --bs=1M --ioengine=psync --direct=0))
rm -f "$DIR"/fio.*
k_out=$($KB --dir "$DIR" --bytes "$BYTES" --io io_uring --bs 1048576 --read | sed -n 's/^consumer //p')
k_read=$(echo "$k_out" | kb_field read_MBps)
printf '%-28s fio %8s MB/s   kbench %8s MB/s   kbench/fio %s%%   (%s)\n' "read (consumer)" "$f_read" "$k_read" \
  "$(python3 -c "print(round(100*$k_read/$f_read))")" "$(echo "$k_out" | tr ' ' '\n' | grep cold_cache)"

mkdir -p results
python3 - "$disk_write_mbps" "$f_iops" "$f_read" "$(realpath "$DIR")" >results/disk-baseline.json <<'PY'
import json, sys, datetime
w, f, r, d = sys.argv[1:5]
print(json.dumps({
    "fio_write_bytes_per_sec": float(w) * 1e6,
    "fio_fsyncs_per_sec": float(f),
    "fio_read_bytes_per_sec": float(r) * 1e6,
    "directory": d,
    "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
}, indent=2))
PY
echo "wrote results/disk-baseline.json (kbench run shows these as the report's reference lines)"
