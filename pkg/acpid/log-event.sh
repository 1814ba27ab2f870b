#!/bin/sh
# acpid's action for every event: one line in the kernel log, which the console shows.
echo "acpid: $*" > /dev/kmsg
