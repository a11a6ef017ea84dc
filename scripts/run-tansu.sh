#!/usr/bin/env bash
# `make run-tansu`: the demo against tansu, started exactly as the tests start it, so that the
# figure in README ("Against tansu") can be reproduced with one command.
#
# tansu 0.6 with its sqlite engine, on a free loopback port, in a temporary folder. Its sqlite
# schema has no index on `header (topition, offset_id)`, so once a topic holds records with headers
# every fetch scans all headers and intake collapses (README, "Tests and brokers"): the index is
# added as soon as the schema exists, as tests/src/lib.rs does. The broker is stopped by its PID
# when the demo ends, whatever the outcome.
#
# Usage: scripts/run-tansu.sh DRIFTLINE_BIN [demo arguments...]
set -euo pipefail
bin="$1"
shift
tansu="${TANSU_BIN:-$HOME/.cache/driftline/tools/bin/tansu}"
[ -x "$tansu" ] || { echo "tansu not found at $tansu (make run-tansu installs it)" >&2; exit 1; }

dir="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="tcp://127.0.0.1:$port"
(cd "$dir" && exec "$tansu" broker --listener-url "$url" --advertised-listener-url "$url" \
    --storage-engine sqlite://tansu.db >"$dir/tansu.log" 2>&1) &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

python3 - "$dir/tansu.db" "$port" <<'EOF'
import socket, sqlite3, sys, time
db, port = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 20
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit(f"tansu did not start listening on 127.0.0.1:{port}")
        time.sleep(0.05)
for _ in range(200):
    try:
        c = sqlite3.connect(db, timeout=10)
        c.execute("create index if not exists header_topition_offset on header (topition, offset_id)")
        c.commit()
        break
    except sqlite3.OperationalError:
        time.sleep(0.05)
else:
    sys.exit("tansu's sqlite schema never appeared")
EOF

echo "tansu 0.6 at 127.0.0.1:$port (sqlite in $dir, header index added)"
"$bin" demo --bootstrap "127.0.0.1:$port" "$@"
