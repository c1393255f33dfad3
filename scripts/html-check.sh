#!/usr/bin/env bash
# Opens an HTML report in headless Chromium, saves a screenshot next to it, and fails when the page
# logs a console error (or Chromium cannot render it). Installs Debian's chromium when absent;
# where that is impossible it says so and exits 77 ("skipped", the automake convention), never 0:
# callers report the skip visibly (scripts/test.sh prints SKIPPED) instead of passing silently.
#
#   scripts/html-check.sh results/<run>/report.html [screenshot.png]
set -euo pipefail
page=${1:?usage: html-check.sh PAGE.html [SCREENSHOT.png]}
shot=${2:-${page%.html}.png}
test -s "$page" || { echo "html-check: $page is missing or empty" >&2; exit 1; }

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null && $sudo true 2>/dev/null; then
    echo "html-check: installing Debian's chromium (one time)..." >&2
    if ! ($sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium) >/dev/null 2>&1; then
      echo "html-check: SKIPPED: apt-get could not install chromium" >&2
      exit 77
    fi
    browser=$(command -v chromium)
  else
    echo "html-check: SKIPPED: no chromium, and no apt-get with root rights to install it" >&2
    exit 77
  fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
url="file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
# --enable-logging=stderr --v=0 prints console messages as "CONSOLE(...)" / ":INFO:CONSOLE" lines.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --enable-logging=stderr --v=0 --virtual-time-budget=5000 --window-size=1400,4000 \
  --screenshot="$shot" "$url" >"$log" 2>&1 || { cat "$log" >&2; echo "html-check: chromium failed on $page" >&2; exit 1; }
test -s "$shot" || { cat "$log" >&2; echo "html-check: no screenshot of $page" >&2; exit 1; }
if grep -E "CONSOLE|Uncaught|SyntaxError" "$log" | grep -viE "level=0|:INFO:" | grep -q .; then
  grep -E "CONSOLE|Uncaught|SyntaxError" "$log" >&2
  echo "html-check: console errors on $page" >&2
  exit 1
fi
echo "html-check: $page rendered without console errors; screenshot $shot"
