#!/bin/sh
# poweroff.sh [SECONDS]: waits, then asks init (PID 1 of the host, hence pid: host) for an
# orderly poweroff with SIGUSR2 — what busybox and baleen-init both understand — and forces one
# if init does not react within 30 s.
sleep "${1:-0}"
sync
echo "poweroff: requesting shutdown"
kill -USR2 1
sleep 30
poweroff -f
