#!/bin/sh
# fwd's keepalived notify script (generated: do not edit). keepalived runs
# it on every transition with four arguments: TYPE NAME STATE PRIORITY.
# It first records the transition for fwd (the state file, replaced
# atomically, and one line appended to transitions), then drives
# conntrackd exactly as conntrackd's primary-backup.sh does. Starting a
# dead conntrackd is left to fwd's supervisor.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
dir=$(dirname "$0")
state=$3
prio=$4
now=$(date +%s.%N)
printf '%s %s %s\n' "$state" "$now" "$prio" >"$dir/state.$$" && mv -f "$dir/state.$$" "$dir/state"
printf '%s %s %s\n' "$now" "$state" "$prio" >>"$dir/transitions"
ct() {
	conntrackd -C "$dir/conntrackd.conf" "$@" >>"$dir/notify.log" 2>&1 ||
		echo "$now $state: conntrackd $* failed" >>"$dir/notify.log"
}
case $state in
MASTER)
	ct -c # commit the flows learnt from the peer into the kernel table
	ct -f # flush the internal and external caches
	ct -R # resync the internal cache with the kernel table
	ct -B # send a bulk update to the peer
	;;
BACKUP)
	ct -t # shorten kernel timers: flows we no longer forward expire
	ct -n # ask the master for a full resync
	;;
FAULT)
	ct -t
	;;
esac
exit 0
