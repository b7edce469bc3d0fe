#!/usr/bin/env bash
# memsample.sh PID OUT STOP: until the file STOP exists, samples every 10 ms the private resident
# memory (RssAnon) of backend PID and of its parallel workers, and writes the peaks in kB to OUT
# as "leader_kb workers_kb" (workers: the largest single worker seen).
pid=$1 out=$2 stop=$3
leader=0 worker=0
while [ ! -e "$stop" ]; do
    v=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$leader" ] && leader=$v
    for w in $(pgrep -f "parallel worker for PID $pid" 2>/dev/null); do
        v=$(awk '/^RssAnon:/ {print $2}' "/proc/$w/status" 2>/dev/null || echo 0)
        [ "${v:-0}" -gt "$worker" ] && worker=$v
    done
    sleep 0.01
done
echo "$leader $worker" >"$out"
