#!/usr/bin/env bash
# A real single-machine Slurm for the tests of studio.cluster.slurm (and for trying `--slurm`
# submits on a workstation): Debian's slurm-wlm and munge, one node named after this host,
# one partition `debug`, no accounting.
#
# Idempotent: installs the packages when missing, writes /etc/slurm/slurm.conf when absent (or
# when this script wrote it), starts munged, slurmctld and slurmd when they are not running,
# and waits until `sinfo` shows the node idle. It never replaces a slurm.conf it did not write
# (a real cluster's), and it needs root (it installs packages and starts daemons).
#
#   sudo bash scripts/local_slurm.sh        # then: sinfo; python -m studio submit CFG --slurm
set -euo pipefail

MARK="# written by BGE Studio scripts/local_slurm.sh"
CONF=/etc/slurm/slurm.conf

if [ "$(id -u)" != 0 ]; then
  echo "local_slurm.sh: needs root (installs slurm-wlm/munge and starts their daemons)" >&2
  exit 2
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "local_slurm.sh: installing slurm-wlm and munge" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# munge: a key readable by the munge user only, its run folder, the daemon as that user.
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

# slurm.conf: this host as the only node, with the CPUs and memory slurmd itself detects.
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  echo "local_slurm.sh: $CONF exists and was not written by this script; using it as is" >&2
else
  HOST="$(hostname -s)"
  NODE_LINE="$(slurmd -C | head -n 1)"          # NodeName=HOST CPUs=.. RealMemory=..
  mkdir -p /etc/slurm
  cat >"$CONF.tmp" <<EOF
$MARK
ClusterName=studio
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# Ended jobs stay visible to `scontrol show job` for 5 minutes (no accounting here).
MinJobAge=300
KillWait=10
$NODE_LINE State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
fi
install -d -m 0755 /var/spool/slurmctld /var/spool/slurmd /var/log/slurm

if ! scontrol ping 2>/dev/null | grep -q "is UP"; then
  /usr/sbin/slurmctld
fi
if ! pgrep -x slurmd >/dev/null; then
  /usr/sbin/slurmd
fi

for _ in $(seq 120); do
  state="$(sinfo -h -N -o '%t' 2>/dev/null | head -n 1 || true)"
  case "$state" in
    idle | mix | alloc) echo "local_slurm.sh: slurm is up ($(sinfo -h -N -o '%N %t %c'))" >&2; exit 0 ;;
    down* | drain* | inval*) scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true ;;
  esac
  sleep 0.5
done
echo "local_slurm.sh: the node never became idle:" >&2
sinfo -N -l >&2 || true
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
