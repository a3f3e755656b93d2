#!/usr/bin/env bash
# usage: exp.sh SLUICED [SECONDS] [CONNECTIONS] [PERF]   one PutRecord run with commit metrics and CPU
set -euo pipefail
bin=$1; secs=${2:-10}; conns=${3:-64}; perf=${4:-}
root=/work/main
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
data=$(mktemp -d /work/ab/exp-XXXXXX)
hp=$(free_port); mp=$(free_port); np=$(free_port)
"$bin" ${CORES:+--cores $CORES} --data-dir "$data/s" --limits unlimited --log-level warn --listen 127.0.0.1:$np --http-listen 127.0.0.1:$hp --metrics-listen 127.0.0.1:$mp >"$data/log" 2>&1 &
spid=$!
trap 'kill $spid 2>/dev/null; wait $spid 2>/dev/null; rm -rf $data' EXIT
wait_port $hp
python3 $root/bench/peers/kinesis.py create 127.0.0.1:$hp s 4
STREAM=s wrk -t 2 -c $conns -d 3 --timeout 60s -s $root/bench/http/${LUA:-put_record.lua} http://127.0.0.1:$hp >/dev/null
curl -s 127.0.0.1:$mp/metrics > $data/m0
cpu0=$(awk '{print $14+$15}' /proc/$spid/stat)
busy0=$(awk '/^cpu / {print $2+$3+$4+$7+$8}' /proc/stat)
( STREAM=s wrk -t 2 -c $conns -d $secs --timeout 60s --latency -s $root/bench/http/${LUA:-put_record.lua} http://127.0.0.1:$hp > $data/wrk; times > $data/wrktimes ) &
wpid=$!
if [ -n "$perf" ]; then sleep 2; perf record -e cpu-clock -F 999 -g -p $spid -o $perf -- sleep $((secs-4)) 2>/dev/null; fi
wait $wpid
cpu1=$(awk '{print $14+$15}' /proc/$spid/stat)
busy1=$(awk '/^cpu / {print $2+$3+$4+$7+$8}' /proc/stat)
curl -s 127.0.0.1:$mp/metrics > $data/m1
grep RESULT $data/wrk
echo "wrk cpu (user sys): $(tail -1 $data/wrktimes)"
req=$(grep RESULT $data/wrk | sed 's/.*requests=\([0-9]*\).*/\1/')
echo "sluiced cpu s: $(( cpu1-cpu0 ))/100 machine busy: $((busy1-busy0))/100; cpu us/request: $(python3 -c "print(round(($cpu1-$cpu0)*1e4/$req,1))") load: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - $data/m0 $data/m1 <<'PY'
import sys,re
def load(p):
    d={}
    for l in open(p):
        if l.startswith('#'): continue
        m=re.match(r'(sluice_(group_commit|fdatasync)[a-z_]*)(\{[^}]*\})? (\S+)',l)
        if m: d[m.group(1)+(m.group(3) or '')]=float(m.group(4))
    return d
a,b=load(sys.argv[1]),load(sys.argv[2])
diff={k:b[k]-a.get(k,0) for k in b}
for name in ['sluice_group_commit_records','sluice_group_commit_latency_seconds','sluice_fdatasync_latency_seconds']:
    for core in ['0','1']:
        bk=sorted([(float(re.search(r'le="([^"]*)"',k).group(1).replace('+Inf','inf')),v) for k,v in diff.items() if k.startswith(name+'_bucket') and f'core="{core}"' in k])
        cnt=[v for k,v in diff.items() if k.startswith(name+'_count') and f'core="{core}"' in k]
        sm=[v for k,v in diff.items() if k.startswith(name+'_sum') and f'core="{core}"' in k]
        if not cnt or not cnt[0]: continue
        n=cnt[0]
        def q(p):
            for le,v in bk:
                if v>=p*n: return le
        print(f"{name} core{core}: count={n:.0f} mean={sm[0]/n:.5g} p50<={q(.5)} p99<={q(.99)}")
PY
