#!/usr/bin/env bash
# End-to-end test of `snakemake --profile profiles/slurm` on a real, throw-away SLURM cluster.
#
# On a Debian (bookworm) machine, as root, without systemd: installs slurm-wlm and munge if
# missing, writes a one-node slurm.conf into a temporary directory, starts munged, slurmctld and
# slurmd by hand (private munge socket, ports, state, spool and log directories; the only file
# outside the temporary directory is a /etc/slurm/slurm.conf link, see below), runs the tiny
# study (tests/configs/tiny.yaml) locally and through SLURM, checks that every job went through
# SLURM and that both runs give identical tables, checks that jobs outlive a SIGKILLed snakemake
# and that scripts/slurm-cancel-stale.sh + resume recovers, and stops the daemons it started on
# exit, whatever happened.
#
# Run it as `make test-slurm` (puts the venv first on PATH). Environment:
#   CACHE_DIR        compiled PyStan models (default: the repository's .cache, shared with make test)
#   KEEP=1           keep the temporary directory (logs, both studies) for inspection
#   SLURM_TEST_PORT  slurmctld port; slurmd uses the next one (default 16817)
#
# No accounting daemon: job state is polled with squeue (`--slurm-status-command squeue`, with
# MinJobAge=600 so finished jobs stay visible), and jobcomp/filetxt records every finished job,
# which is how this script counts the jobs that really ran under SLURM.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TINY="$REPO/tests/configs/tiny.yaml"
CACHE_DIR=${CACHE_DIR:-$REPO/.cache}
PORT=${SLURM_TEST_PORT:-16817}
START=$SECONDS

say() { printf '[test-slurm %3ds] %s\n' "$((SECONDS - START))" "$*"; }
die() {
	say "FAIL: $*" >&2
	exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages and starts slurmctld, slurmd and munged)"
command -v snakemake >/dev/null || die "snakemake not on PATH: run 'make test-slurm' (puts .venv/bin first)"
python -c 'import snakemake_executor_plugin_slurm' 2>/dev/null ||
	die "snakemake-executor-plugin-slurm is not installed in $(command -v python): run 'make install'"

# --- packages (idempotent) --------------------------------------------------------------------
need=()
for pkg in slurm-wlm munge; do
	dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if ((${#need[@]})); then
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- scratch directory and cleanup ------------------------------------------------------------
TMP=$(mktemp -d /tmp/shrinksim-slurm.XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
	local rc=$?
	set +e
	if [[ -n ${victim:-} ]] && kill -0 "$victim" 2>/dev/null; then
		kill -TERM "$victim" # the snakemake of the SIGKILL check, if a failure left it running
		wait "$victim" 2>/dev/null
	fi
	if [[ -n ${SLURM_CONF:-} ]] && ((${#PIDS[@]})); then
		# Jobs left by a failed run would otherwise outlive their cluster's controller.
		scancel --full --quiet --user=root 2>/dev/null
		for _ in $(seq 20); do
			[[ -z $(squeue --noheader --format=%i 2>/dev/null) ]] && break
			sleep 0.5
		done
	fi
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill "${PIDS[i]}" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$pid" 2>/dev/null
	done
	((${#PIDS[@]})) && say "stopped munged, slurmctld and slurmd"
	if [[ ${LINKED_CONF:-0} == 1 ]] && [[ $(readlink "$SYSTEM_CONF") == "$SLURM_CONF" ]]; then
		rm -f "$SYSTEM_CONF"
	fi
	if ((rc != 0)); then
		for log in "$TMP"/log/*.log; do
			[[ -f $log ]] || continue
			echo "----- last lines of $log" >&2
			tail -n 25 "$log" >&2
		done
	fi
	if [[ ${KEEP:-0} == 1 ]] || ((rc != 0)); then
		say "kept $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$TMP"/{log,munge,state,spool}

# --- munged: a private socket, so a munged of the machine (if any) is left alone ---------------
KEY=/etc/munge/munge.key
if [[ ! -s $KEY ]]; then
	KEY="$TMP/munge/munge.key"
	mungekey --create --keyfile="$KEY"
fi
SOCKET="$TMP/munge/munge.socket"
munged --foreground --force --socket="$SOCKET" --key-file="$KEY" \
	--pid-file="$TMP/munge/munged.pid" --seed-file="$TMP/munge/seed" \
	--log-file="$TMP/log/munged.log" >>"$TMP/log/munged.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
	[[ -S $SOCKET ]] && break
	sleep 0.1
done
munge --socket="$SOCKET" -n | unmunge --socket="$SOCKET" >/dev/null || die "munged does not answer"

# --- one-node slurm.conf from the machine's real hostname, CPUs and memory ---------------------
NODE=$(hostname -s)
CPUS=$(nproc)
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
export SLURM_CONF="$TMP/slurm.conf"
cat >"$SLURM_CONF" <<EOF
# Written by tests/slurm/run.sh: a throw-away one-node cluster.
ClusterName=shrinksim-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$TMP/state
SlurmdSpoolDir=$TMP/spool/%n
SlurmctldPidFile=$TMP/slurmctld.pid
SlurmdPidFile=$TMP/slurmd.pid
SlurmctldLogFile=$TMP/log/slurmctld.log
SlurmdLogFile=$TMP/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$TMP/log/jobcomp.log
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=test Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

# The jobstep plugin runs each job's command through `srun` with every SLURM_* variable but a
# few removed, SLURM_CONF included, so srun reads the default path, as on a real cluster: link it
# there for the test's lifetime (only if no slurm.conf exists, or a dead link of an earlier run).
SYSTEM_CONF=/etc/slurm/slurm.conf
if [[ -e $SYSTEM_CONF ]]; then
	[[ $(readlink "$SYSTEM_CONF") == /tmp/shrinksim-slurm.*/slurm.conf ]] &&
		die "another test-slurm run is active ($SYSTEM_CONF -> $(readlink "$SYSTEM_CONF"))"
	die "$SYSTEM_CONF exists: this machine has a SLURM cluster configured; not touching it"
fi
mkdir -p "$(dirname "$SYSTEM_CONF")"
ln -sfn "$SLURM_CONF" "$SYSTEM_CONF"
LINKED_CONF=1

say "starting slurmctld and slurmd ($NODE: $CPUS CPUs, $MEM MB; SLURM_CONF=$SLURM_CONF)"
slurmctld -D -i -f "$SLURM_CONF" >>"$TMP/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" >>"$TMP/log/slurmd.out" 2>&1 &
PIDS+=($!)
state=""
for _ in $(seq 60); do
	state=$(sinfo --noheader --nodes="$NODE" --format=%T 2>/dev/null || true)
	[[ $state == idle ]] && break
	sleep 1
done
[[ $state == idle ]] || die "node $NODE is '${state:-unreachable}', not idle, after 60 s"
say "cluster up: node $NODE idle"

# --- the tiny study, locally and through SLURM ------------------------------------------------
workdir() {
	mkdir -p "$1"
	for name in Snakefile config.yaml workflow stan profiles; do
		ln -s "$REPO/$name" "$1/$name"
	done
}
ARGS=(--configfile "$TINY" --config "cache_dir=$CACHE_DIR")
# What the test cluster needs on top of profiles/slurm: no accounting, so squeue for job state
# (MinJobAge above keeps finished jobs visible), and quick first polls.
SLURM_ARGS=(--profile profiles/slurm "${ARGS[@]}"
	--slurm-status-command squeue --slurm-init-seconds-before-status-checks 5)

workdir "$TMP/local"
say "local run (snakemake --cores 2)"
(cd "$TMP/local" && snakemake --cores 2 "${ARGS[@]}") >"$TMP/log/local.log" 2>&1 ||
	die "local run failed: see $TMP/log/local.log"

workdir "$TMP/slurm"
cd "$TMP/slurm"
expected=$(snakemake "${SLURM_ARGS[@]}" --dry-run 2>&1 |
	awk '$1 == "total" && !total { total = $2 } $1 == "all" && !all { all = $2 }
	     END { print total - all }')
say "SLURM run (snakemake --profile profiles/slurm): $expected jobs to submit"
snakemake "${SLURM_ARGS[@]}" >"$TMP/log/snakemake-slurm.log" 2>&1 ||
	die "SLURM run failed: see $TMP/log/snakemake-slurm.log"

# --- did every job go through SLURM? ----------------------------------------------------------
submitted_ids() { sed -n 's/.*has been submitted with SLURM jobid \([0-9]*\).*/\1/p' "$1" | sort -u; }
mapfile -t submitted < <(submitted_ids "$TMP/log/snakemake-slurm.log")
mapfile -t completed < <(sed -n 's/^JobId=\([0-9]*\) .*JobState=COMPLETED.*/\1/p' \
	"$TMP/log/jobcomp.log" 2>/dev/null | sort -u)
say "snakemake submitted ${#submitted[@]} SLURM jobs (ids $(printf '%s\n' "${submitted[@]}" |
	sort -n | paste -sd,)); slurmctld recorded ${#completed[@]} completed"
((${#submitted[@]} == expected)) || die "expected $expected SLURM jobs, snakemake submitted ${#submitted[@]}"
missing=$(comm -23 <(printf '%s\n' "${submitted[@]}") <(printf '%s\n' "${completed[@]}"))
[[ -z $missing ]] || die "submitted but not recorded as COMPLETED by slurmctld: $missing"

python "$REPO/tests/slurm/compare.py" "$TMP/local/results" "$TMP/slurm/results" ||
	die "SLURM and local results differ"
say "results identical to the local run (every table: summary and fit jobs)"

# --- SIGKILL: the jobs outlive snakemake; cancel them, unlock, resume ------------------------
# Refit the first batch of every data cell (the tiny study's 2 fit jobs, each fitting every
# prior and model of its cell), asked for as targets, killing snakemake while they run. Two
# threads per fit now, so cpus_per_task is seen to follow threads (and the numbers must not
# change).
mapfile -t fit_jobs < <(cd results/fits && printf '%s\n' */*/*/batch=0)
((${#fit_jobs[@]} == 2)) || die "expected 2 fit jobs of batch 0, found ${#fit_jobs[@]}"
targets=()
for job in "${fit_jobs[@]}"; do
	for table in groups fits draws; do
		targets+=("results/$table/$job/part-0.parquet")
	done
done
rm "${targets[@]}"
SLURM_ARGS+=(--set-threads fit=2)
snakemake "${targets[@]}" "${SLURM_ARGS[@]}" >"$TMP/log/snakemake-killed.log" 2>&1 &
victim=$!
running=0
for _ in $(seq 120); do
	running=$(squeue --noheader --states=RUNNING --format=%j | grep -c '^shrinksim_' || true)
	((running > 0)) && break
	kill -0 "$victim" 2>/dev/null || die "snakemake ended before a job ran: see $TMP/log/snakemake-killed.log"
	sleep 1
done
((running > 0)) || die "no job running 120 s after the start: see $TMP/log/snakemake-killed.log"
kill -KILL "$victim"
wait "$victim" 2>/dev/null || true
victim=""
left=$(squeue --noheader --format=%i | wc -l)
((left > 0)) || die "no job left after SIGKILL of snakemake: cannot check the cancel script"
say "killed snakemake (SIGKILL) with $running jobs running: $left jobs still queued or running"
"$REPO/scripts/slurm-cancel-stale.sh" "$TMP/slurm" >"$TMP/log/cancel.log" 2>&1 ||
	die "scripts/slurm-cancel-stale.sh failed: see $TMP/log/cancel.log"
left=$(squeue --noheader --states=PENDING,RUNNING,COMPLETING --format=%i | wc -l)
((left == 0)) || die "$left jobs left after scripts/slurm-cancel-stale.sh"
snakemake "${ARGS[@]}" --unlock >"$TMP/log/unlock.log" 2>&1 || die "snakemake --unlock failed"
snakemake "${targets[@]}" "${SLURM_ARGS[@]}" >"$TMP/log/snakemake-resumed.log" 2>&1 ||
	die "resumed SLURM run failed: see $TMP/log/snakemake-resumed.log"
mapfile -t resumed < <(submitted_ids "$TMP/log/snakemake-resumed.log")
say "cancelled the killed run's jobs and resumed: ${#resumed[@]} more SLURM jobs"
two_cpus=$(grep -c 'JobState=COMPLETED .*Tres=cpu=2,' "$TMP/log/jobcomp.log" || true)
((two_cpus >= 2)) || die "expected 2 completed fit jobs with 2 CPUs (--set-threads fit=2), slurmctld saw $two_cpus"
python "$REPO/tests/slurm/compare.py" "$TMP/local/results" results ||
	die "the refitted tables differ from the local run after the resume"
cd "$REPO"

say "PASS: ${#submitted[@]} SLURM jobs for the tiny study, results identical to the local run," \
	"also after SIGKILL, cancel and resume ($((SECONDS - START)) s)"
