#!/usr/bin/env bash
# bench/options_tcp.sh [CALLS] — OPTIONS answered per server CPU-second over
# one persistent TCP connection: openum against Kamailio 5.6 answering
# statelessly (sl_send_reply), under the same sipp load.
#   - each server pinned to core 1 (taskset -c 1), sipp to core 0;
#   - server CPU time = utime + stime from /proc/PID/stat (every Kamailio
#     process), read before and after the load;
#   - sipp -t t1 (one TCP connection), CALLS OPTIONS (default 200000).
# Prints one line per server and the ratio. Needs sip-tester and kamailio
# (installed on demand). Only loopback addresses are used.
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-200000}
build=$(scripts/build release)
bin=$PWD/$build/src/cli/openum
for p in sip-tester:sipp kamailio:kamailio; do
	command -v "${p#*:}" >/dev/null || apt-get install -y -qq --no-install-recommends "${p%%:*}" >/dev/null
done
tmp=$(mktemp -d /tmp/openum-bench.XXXXXX)
hz=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
load() { # port -> successful calls
	(cd "$tmp" && taskset -c 0 sipp -sf "$OLDPWD/tests/component/sipp/options.xml" -t t1 \
		-i 127.0.0.1 -p "$(free_port)" -m "$calls" -r 40000 -l 2000 -timeout 300 \
		-timeout_error -nostdin -trace_screen "127.0.0.1:$1" >/dev/null 2>&1 || true)
	local screen
	screen=$(ls -t "$tmp"/options_*_screen.log | head -n 1)
	awk '/Successful call/ {v=$NF} END {print v+0}' "$screen"
	rm -f "$tmp"/options_*_screen.log
}
measure() { # name port pids...
	local name=$1 port=$2; shift 2
	local t0 t1 ok cpu
	t0=$(ticks "$@")
	ok=$(load "$port")
	t1=$(ticks "$@")
	cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN{printf "%.3f", (b-a)/hz}')
	awk -v n="$name" -v ok="$ok" -v cpu="$cpu" \
		'BEGIN{printf "%-9s %8d OPTIONS answered, %7.2f server CPU-s, %9.0f OPTIONS per CPU-second\n", n, ok, cpu, (cpu>0?ok/cpu:0)}'
	echo "$ok $cpu" >"$tmp/$name.result"
}

# openum
data=$tmp/openum
oport=$(free_port)
"$bin" init --data "$data" >/dev/null
printf '[server]\nfqdn = bench.example.com\nsip_tcp = 127.0.0.1:%s\nlog_level = warning\n' "$oport" >"$data/openum.conf"
"$bin" --data "$data" dialplan new bench --digits 4 >/dev/null
"$bin" --data "$data" gateway new loadgen --address 127.0.0.1 --dialplan bench >/dev/null
taskset -c 1 "$bin" serve --data "$data" 2>"$tmp/openum.log" &
opid=$!
for _ in $(seq 50); do "$bin" status --data "$data" >/dev/null 2>&1 && break; sleep 0.1; done
measure openum "$oport" "$opid"
kill -TERM "$opid"; wait "$opid" || true

# Kamailio, stateless
kport=$(free_port)
cat >"$tmp/kamailio.cfg" <<CFG
#!KAMAILIO
debug=0
log_stderror=yes
children=2
tcp_children=2
disable_tcp=no
listen=tcp:127.0.0.1:$kport
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "sl.so"
request_route {
	if (method == "OPTIONS") { sl_send_reply("200", "OK"); exit; }
	sl_send_reply("501", "Not Implemented");
}
CFG
taskset -c 1 kamailio -f "$tmp/kamailio.cfg" -DD -E -P "$tmp/kamailio.pid" 2>"$tmp/kamailio.log" &
kpid=$!
sleep 1.5
kpids=$(pgrep -P "$kpid" | tr '\n' ' ')
# shellcheck disable=SC2086
measure kamailio "$kport" "$kpid" $kpids
kill -TERM "$kpid"; wait "$kpid" 2>/dev/null || true

read -r ook ocpu <"$tmp/openum.result"
read -r kok kcpu <"$tmp/kamailio.result"
awk -v a="$ook" -v b="$ocpu" -v c="$kok" -v d="$kcpu" \
	'BEGIN{ if (b>0 && d>0 && c>0) printf "openum / kamailio: %.2fx (per server CPU-second)\n", (a/b)/(c/d) }'
rm -rf "$tmp"
