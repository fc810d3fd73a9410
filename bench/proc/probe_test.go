package proc

import "testing"

func TestProbeSpeed(t *testing.T) {
	s, err := ProbeSpeed(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if s.SHA256MBps <= 0 || s.FsyncOverwriteMicros <= 0 || s.FsyncAppendMicros <= 0 {
		t.Errorf("ProbeSpeed = %+v, want positive figures", s)
	}
}
