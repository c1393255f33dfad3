#!/usr/bin/env bash
# HdrHistogram's own readers for the results-format test (harness/tests/results_format.rs), installed
# when missing, printed as KEY=value lines for the test's environment (scripts/test.sh):
#   KBENCH_HDRH_JAR     Java's HdrHistogram (Debian's libhdrhistogram-java), whose
#                       HistogramLogProcessor turns kbench's latency.hlog into the .hgrm that
#                       kbench's end_to_end.hgrm must equal; java itself from Debian when missing
#   KBENCH_HDRH_PYTHON  a python with PyPI's hdrhistogram (HdrHistogram_py, in a venv under
#                       ~/.cache/kbench), whose HistogramLogReader reads latency.hlog back
#                       (0.10 or later: earlier releases skip the tagged lines kbench writes)
#   env $(scripts/hdrh.sh) cargo test -p kbench --test results_format -- --ignored
set -euo pipefail
version=0.10.8
jar=/usr/share/java/hdrhistogram.jar
log() { echo "hdrh.sh: $*" >&2; }

missing=()
command -v java >/dev/null || missing+=(default-jre-headless)
[[ -f $jar ]] || missing+=(libhdrhistogram-java)
if ((${#missing[@]})); then
  log "installing Debian's ${missing[*]}"
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || { apt-get update -qq >/dev/null; apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi

venv=${XDG_CACHE_HOME:-$HOME/.cache}/kbench/hdrhistogram-$version
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import hdrh.log, pyhdrh' 2>/dev/null; then
  log "installing hdrhistogram $version (PyPI) into $venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q "hdrhistogram==$version" >&2
fi
echo "KBENCH_HDRH_JAR=$jar"
echo "KBENCH_HDRH_PYTHON=$venv/bin/python"
