package loadgen

import (
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// fineSleep sleeps for d (< 2 ms) with nanosleep(2) directly. Go's own
// timers wake an idle process through epoll_wait, whose timeout has
// millisecond resolution, so a time.Sleep of 300 µs often lasts 1 ms. A raw
// nanosleep is precise to tens of microseconds; it keeps its P for the
// duration, which is why the pacer wants GOMAXPROCS >= 2 (see [Open]) and
// why d is kept short (a stop-the-world waits for it).
func fineSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_, _, _ = syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// preparePacer locks the calling goroutine to its thread and sets that
// thread's timer slack to 1 ns (from the default 50 µs), so fineSleep
// oversleeps less. The caller must call the returned function when done.
func preparePacer() (undo func()) {
	runtime.LockOSThread()
	const prSetTimerslack = 29
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, 1, 0)
	return runtime.UnlockOSThread // the thread keeps its slack; harmless
}
