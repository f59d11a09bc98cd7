package daemon

import "golang.org/x/sys/unix"

func syscallUmask(m int) int { return unix.Umask(m) }
