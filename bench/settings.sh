# The benchmark cluster: its own port and directory (apart from the test cluster) and settings,
# shared by bench/run.sh and bench/clv.sh.
CDA_PORT=${CDA_BENCH_PORT:-55416}
BENCH_SETTINGS="shared_buffers = 4GB
work_mem = 256MB
maintenance_work_mem = 1GB
max_wal_size = 16GB
checkpoint_timeout = 1h
max_parallel_workers_per_gather = 2
max_worker_processes = 8
jit = on"
CDA_CLUSTER_SETTINGS=$BENCH_SETTINGS

# write_section NAME TEXT: puts TEXT between the <!-- NAME:begin --> and <!-- NAME:end --> lines of
# BENCHMARKS.md (added at its end when missing), leaving the hand-written text around them.
write_section() {
    local f=$ROOT/BENCHMARKS.md
    [ -f "$f" ] || printf '# Benchmarks\n' >"$f"
    grep -q "<!-- $1:begin -->" "$f" || printf '\n<!-- %s:begin -->\n<!-- %s:end -->\n' "$1" "$1" >>"$f"
    awk -v text="$2" -v begin="<!-- $1:begin -->" -v end="<!-- $1:end -->" '
        $0 == begin {print; print text; skip = 1; next}
        $0 == end {skip = 0}
        !skip {print}' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
    say "results written to BENCHMARKS.md"
}

# ms DB SQL: runs SQL in a fresh session with \timing and prints the milliseconds it took.
ms() {
    PGOPTIONS='-c client_min_messages=warning' psql_ -d "$1" -c '\timing on' -c "$2" | awk '/^Time: / {t=$2} END {if (t == "") exit 1; print t}'
}
# min A B: the smaller of two times (B when A is empty), for the best of interleaved rounds.
min() { awk -v a="${1:-$2}" -v c="$2" 'BEGIN {print (c < a) ? c : a}'; }
# q DB SQL: the rows of SQL, unaligned, fields separated by spaces, without notices.
q() { PGOPTIONS='-c client_min_messages=warning' psql_ -d "$1" -At -F ' ' -c "$2"; }

# scales_options DEFAULT ARGS...: the options of a script that takes only `--scales "..."` and
# `--no-write` (churn.sh, products.sh); sets SCALES (DEFAULT when not given) and WRITE.
scales_options() {
    SCALES=$1
    WRITE=1
    shift
    while [ $# -gt 0 ]; do
        case $1 in
            --scales) SCALES=${2:?--scales needs a list of scales}; shift 2 ;;
            --no-write) WRITE=0; shift ;;
            *) echo "unknown option $1" >&2; exit 2 ;;
        esac
    done
}
