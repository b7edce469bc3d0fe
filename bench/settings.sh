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
