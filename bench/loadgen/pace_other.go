//go:build !linux

package loadgen

import "time"

// fineSleep falls back to time.Sleep where raw nanosleep is not wired up.
func fineSleep(d time.Duration) { time.Sleep(d) }

// preparePacer does nothing where fineSleep is time.Sleep.
func preparePacer() (undo func()) { return func() {} }
