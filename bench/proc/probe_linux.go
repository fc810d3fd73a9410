package proc

import (
	"os"
	"syscall"
)

// syncData is fdatasync(2), as Pebble syncs its WAL.
func syncData(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
