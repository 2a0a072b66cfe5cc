#!/usr/bin/env bash
# Cancel the SLURM jobs left behind by a shrinksim run whose snakemake is gone.
#
# Snakemake cancels its SLURM jobs on Ctrl-C (SIGINT) and SIGTERM, but not when it is killed
# with SIGKILL (kill -9, an out-of-memory kill, a login node reboot, a lost session without
# tmux/screen): its jobs keep running and would write into the outputs of the next run. Run
# this before resuming, then `snakemake --unlock` and the same snakemake command as before
# (rerun-incomplete is on in profiles/default, so the killed run's unfinished jobs are redone).
#
# Usage: scripts/slurm-cancel-stale.sh [--dry-run] [--force] [STUDY_DIR]   (default: .)
# It cancels your pending and running jobs whose name starts with shrinksim_ (profiles/slurm
# sets slurm-jobname-prefix: shrinksim) and whose working directory is STUDY_DIR, then waits
# until SLURM has let them go. It refuses while a snakemake runs in STUDY_DIR on this host
# (--force to cancel all the same).
set -euo pipefail

dry_run=0
force=0
while (($#)); do
	case $1 in
	--dry-run) dry_run=1 ;;
	--force) force=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "unknown option $1 (see --help)" >&2
		exit 2
		;;
	*) break ;;
	esac
	shift
done
dir=$(cd "${1:-.}" && pwd -P)
prefix=${SHRINKSIM_SLURM_PREFIX:-shrinksim}_
command -v squeue >/dev/null || {
	echo "squeue not found: run this where you submit SLURM jobs" >&2
	exit 1
}

# A snakemake that still runs here owns these jobs: stopping it with Ctrl-C cancels them.
if ((!force)); then
	for proc in /proc/[0-9]*; do
		[[ $(readlink "$proc/cwd" 2>/dev/null) == "$dir" ]] || continue
		cmd=$(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null) || continue
		# A job's own snakemake (on a node that is also a login node) runs with --mode.
		if [[ $cmd == *snakemake* && $cmd != *"--mode "* ]]; then
			echo "snakemake (pid ${proc#/proc/}) still runs in $dir: stop it with Ctrl-C" \
				"(it cancels its own jobs), or use --force" >&2
			exit 1
		fi
	done
fi

stale() {
	squeue --me --noheader --format='%i|%j|%T|%Z' \
		--states=PENDING,CONFIGURING,RUNNING,SUSPENDED,COMPLETING,REQUEUED,RESIZING |
		awk -F'|' -v p="$prefix" -v d="$dir" 'index($2, p) == 1 && $4 == d { print $1 }'
}

mapfile -t jobs < <(stale)
if ((${#jobs[@]} == 0)); then
	echo "no pending or running ${prefix}* jobs of yours in $dir"
	exit 0
fi
echo "${#jobs[@]} ${prefix}* jobs of yours in $dir: ${jobs[*]}"
if ((dry_run)); then
	exit 0
fi
scancel "${jobs[@]}"
for _ in $(seq 120); do
	mapfile -t jobs < <(stale)
	if ((${#jobs[@]} == 0)); then
		echo "cancelled; now resume: snakemake --unlock, then your snakemake command again"
		exit 0
	fi
	sleep 1
done
echo "still not gone after 120 s: ${jobs[*]}" >&2
exit 1
