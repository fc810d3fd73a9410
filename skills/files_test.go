package skills

import (
	"archive/zip"
	"bytes"
	"errors"
	"testing"
)

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"SKILL.md", true},
		{"scripts/run.py", true},
		{"docs/ünïcode ✓.md", true},
		{"", false},
		{"../x", false},
		{"a/../../x", false},
		{"a/./b", false},
		{"a//b", false},
		{"/etc/passwd", false},
		{"a\\b", false},
		{"C:/x", false},
		{"file.txt:stream", false},
		{"bad\xffname", false},
		{"tab\tname", false},
		{"nul\x00name", false},
		{"c1\u0085name", false},
	} {
		err := checkPath(tc.path)
		if (err == nil) != tc.ok {
			t.Errorf("checkPath(%q) = %v, want ok=%v", tc.path, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrUnsafePath) {
			t.Errorf("checkPath(%q) = %v, want an unsafe_path error", tc.path, err)
		}
	}
}

func TestNormalizeStripsTheOneTopFolder(t *testing.T) {
	got, err := normalize([]Content{{path: "top/b.txt"}, {path: "top/SKILL.md"}, {path: "top/x/y"}})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range got {
		paths = append(paths, f.path)
	}
	if want := []string{"SKILL.md", "b.txt", "x/y"}; !equal(paths, want) {
		t.Fatalf("normalize = %v, want %v", paths, want)
	}
	if _, err := normalize([]Content{{path: "top/SKILL.md"}, {path: "other/x"}}); !errors.Is(err, ErrMissingSkillMD) {
		t.Fatalf("normalize of two top folders = %v, want missing_skill_md", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzReadArchive: any bytes either unpack within the limits or are
// refused with a *Error; never a panic (reliability.md B-3).
func FuzzReadArchive(f *testing.F) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("SKILL.md")
	_, _ = w.Write([]byte("# hi\n"))
	w, _ = zw.Create("a/b.txt")
	_, _ = w.Write(bytes.Repeat([]byte("x"), 1000))
	_ = zw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	lim := Limits{MaxArchiveBytes: 1 << 20, MaxTotalBytes: 1 << 20, MaxFileBytes: 256 << 10, MaxFiles: 50, MaxRatio: 100}
	f.Fuzz(func(t *testing.T, raw []byte) {
		files, err := readArchive(raw, lim)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("readArchive error %v is not a *Error", err)
			}
			return
		}
		var total int64
		for _, fl := range files {
			if checkPath(fl.path) != nil {
				t.Fatalf("accepted unsafe path %q", fl.path)
			}
			total += int64(len(fl.data))
		}
		if len(files) > lim.MaxFiles || total > lim.MaxTotalBytes {
			t.Fatalf("accepted %d files of %d bytes past the limits", len(files), total)
		}
	})
}
