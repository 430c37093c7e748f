package diskio

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"testing"
)

// fsUnderTest gives a fresh FS and a root directory inside it.
type fsUnderTest struct {
	name string
	make func(t *testing.T) (FS, string)
}

var fsImpls = []fsUnderTest{
	{"OS", func(t *testing.T) (FS, string) { return NewOS(), t.TempDir() }},
	{"Sim", func(t *testing.T) (FS, string) {
		s := NewSim(1)
		if err := s.MkdirAll("/root"); err != nil {
			t.Fatal(err)
		}
		return s, "/root"
	}},
}

// wantErr checks err is a *PathError with op, naming path, matching sentinel.
func wantErr(t *testing.T, err error, op, p string, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s %s: want error %v, got nil", op, p, sentinel)
	}
	var pe *PathError
	if !errors.As(err, &pe) {
		t.Fatalf("%s %s: error %v (%T) is not a *PathError", op, p, err, err)
	}
	if pe.Op != op || pe.Path != p {
		t.Fatalf("PathError names op=%q path=%q, want op=%q path=%q", pe.Op, pe.Path, op, p)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("%s %s: error %v does not match %v", op, p, err, sentinel)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, f File) []byte {
	t.Helper()
	size, err := f.Size()
	must(t, err)
	buf := make([]byte, size)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return buf[:n]
}

func writeFile(t *testing.T, fsys FS, name string, data []byte) {
	t.Helper()
	f, err := fsys.Create(name)
	must(t, err)
	_, err = f.WriteAt(data, 0)
	must(t, err)
	must(t, f.Sync())
	must(t, f.Close())
}

func contentOf(t *testing.T, fsys FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(name)
	must(t, err)
	defer f.Close()
	return readAll(t, f)
}

var conformanceCases = []struct {
	name string
	run  func(t *testing.T, fsys FS, root string)
}{
	{"CreateWriteReadAt", func(t *testing.T, fsys FS, root string) {
		name := path.Join(root, "a")
		f, err := fsys.Create(name)
		must(t, err)
		defer f.Close()
		if f.Name() != name {
			t.Fatalf("Name %q, want %q", f.Name(), name)
		}
		_, err = f.WriteAt([]byte("hello world"), 0)
		must(t, err)
		_, err = f.WriteAt([]byte("WORLD"), 6)
		must(t, err)
		buf := make([]byte, 5)
		n, err := f.ReadAt(buf, 6)
		if n != 5 || err != nil || string(buf) != "WORLD" {
			t.Fatalf("ReadAt = %d %v %q", n, err, buf)
		}
	}},
	{"WritePastEndZeroFills", func(t *testing.T, fsys FS, root string) {
		f, err := fsys.Create(path.Join(root, "a"))
		must(t, err)
		defer f.Close()
		_, err = f.WriteAt([]byte("x"), 4)
		must(t, err)
		if got := readAll(t, f); !bytes.Equal(got, []byte{0, 0, 0, 0, 'x'}) {
			t.Fatalf("content %q", got)
		}
	}},
	{"AppendAndSize", func(t *testing.T, fsys FS, root string) {
		f, err := fsys.Create(path.Join(root, "a"))
		must(t, err)
		defer f.Close()
		for _, s := range []string{"ab", "", "cde"} {
			n, err := f.Append([]byte(s))
			must(t, err)
			if n != len(s) {
				t.Fatalf("Append n=%d", n)
			}
		}
		size, err := f.Size()
		must(t, err)
		if size != 5 || string(readAll(t, f)) != "abcde" {
			t.Fatalf("size %d content %q", size, readAll(t, f))
		}
	}},
	{"ReadAtEOF", func(t *testing.T, fsys FS, root string) {
		name := path.Join(root, "a")
		writeFile(t, fsys, name, []byte("abc"))
		f, err := fsys.Open(name)
		must(t, err)
		defer f.Close()
		buf := make([]byte, 4)
		if n, err := f.ReadAt(buf, 1); n != 2 || err != io.EOF || string(buf[:2]) != "bc" {
			t.Fatalf("short ReadAt = %d %v", n, err)
		}
		if n, err := f.ReadAt(buf, 3); n != 0 || err != io.EOF {
			t.Fatalf("ReadAt at end = %d %v", n, err)
		}
		if n, err := f.ReadAt(buf, 10); n != 0 || err != io.EOF {
			t.Fatalf("ReadAt past end = %d %v", n, err)
		}
		if n, err := f.ReadAt(buf[:3], 0); n != 3 || err != nil {
			t.Fatalf("exact ReadAt = %d %v", n, err)
		}
	}},
	{"Truncate", func(t *testing.T, fsys FS, root string) {
		f, err := fsys.Create(path.Join(root, "a"))
		must(t, err)
		defer f.Close()
		_, err = f.Append([]byte("abcdef"))
		must(t, err)
		must(t, f.Truncate(2))
		must(t, f.Truncate(4))
		if got := readAll(t, f); !bytes.Equal(got, []byte{'a', 'b', 0, 0}) {
			t.Fatalf("content %q", got)
		}
	}},
	{"CreateTruncatesExisting", func(t *testing.T, fsys FS, root string) {
		name := path.Join(root, "a")
		writeFile(t, fsys, name, []byte("old"))
		f, err := fsys.Create(name)
		must(t, err)
		must(t, f.Close())
		if got := contentOf(t, fsys, name); len(got) != 0 {
			t.Fatalf("content %q", got)
		}
	}},
	{"CreateExclusive", func(t *testing.T, fsys FS, root string) {
		name := path.Join(root, "a")
		f, err := fsys.CreateExclusive(name)
		must(t, err)
		must(t, f.Close())
		_, err = fsys.CreateExclusive(name)
		wantErr(t, err, "create", name, ErrExist)
		if !errors.Is(err, fs.ErrExist) {
			t.Fatal("not fs.ErrExist")
		}
	}},
	{"NotExist", func(t *testing.T, fsys FS, root string) {
		name := path.Join(root, "missing")
		_, err := fsys.Open(name)
		wantErr(t, err, "open", name, ErrNotExist)
		if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, os.ErrNotExist) {
			t.Fatal("not os.ErrNotExist")
		}
		_, err = fsys.OpenRW(name)
		wantErr(t, err, "open", name, ErrNotExist)
		wantErr(t, fsys.Remove(name), "remove", name, ErrNotExist)
		_, err = fsys.Stat(name)
		wantErr(t, err, "stat", name, ErrNotExist)
		_, err = fsys.List(name)
		wantErr(t, err, "list", name, ErrNotExist)
		_, err = fsys.Create(path.Join(name, "x"))
		wantErr(t, err, "create", path.Join(name, "x"), ErrNotExist)
		err = fsys.Rename(name, path.Join(root, "b"))
		wantErr(t, err, "rename", name+" -> "+path.Join(root, "b"), ErrNotExist)
		must(t, fsys.RemoveAll(name))
	}},
	{"ClosedAndReadOnly", func(t *testing.T, fsys FS, root string) {
		name := path.Join(root, "a")
		writeFile(t, fsys, name, []byte("abc"))
		f, err := fsys.Open(name)
		must(t, err)
		_, err = f.WriteAt([]byte("x"), 0)
		wantErr(t, err, "write", name, ErrReadOnly)
		_, err = f.Append([]byte("x"))
		wantErr(t, err, "append", name, ErrReadOnly)
		wantErr(t, f.Truncate(0), "truncate", name, ErrReadOnly)
		must(t, f.Close())
		wantErr(t, f.Close(), "close", name, ErrClosed)
		_, err = f.ReadAt(make([]byte, 1), 0)
		wantErr(t, err, "read", name, ErrClosed)
		g, err := fsys.OpenRW(name)
		must(t, err)
		must(t, g.Close())
		_, err = g.WriteAt([]byte("x"), 0)
		wantErr(t, err, "write", name, ErrClosed)
		if got := contentOf(t, fsys, name); string(got) != "abc" {
			t.Fatalf("content %q", got)
		}
	}},
	{"OpenRWKeepsContent", func(t *testing.T, fsys FS, root string) {
		name := path.Join(root, "a")
		writeFile(t, fsys, name, []byte("abc"))
		f, err := fsys.OpenRW(name)
		must(t, err)
		_, err = f.Append([]byte("d"))
		must(t, err)
		must(t, f.Close())
		if got := contentOf(t, fsys, name); string(got) != "abcd" {
			t.Fatalf("content %q", got)
		}
	}},
	{"RenameOverExisting", func(t *testing.T, fsys FS, root string) {
		a, b := path.Join(root, "a"), path.Join(root, "b")
		writeFile(t, fsys, a, []byte("new"))
		writeFile(t, fsys, b, []byte("old"))
		f, err := fsys.OpenRW(a)
		must(t, err)
		defer f.Close()
		must(t, fsys.Rename(a, b))
		if _, err := fsys.Stat(a); !errors.Is(err, ErrNotExist) {
			t.Fatalf("old name still there: %v", err)
		}
		if got := contentOf(t, fsys, b); string(got) != "new" {
			t.Fatalf("content %q", got)
		}
		_, err = f.Append([]byte("!")) // handle follows the inode
		must(t, err)
		if got := contentOf(t, fsys, b); string(got) != "new!" {
			t.Fatalf("content after write via old handle %q", got)
		}
	}},
	{"RemoveOpenFile", func(t *testing.T, fsys FS, root string) {
		a := path.Join(root, "a")
		writeFile(t, fsys, a, []byte("abc"))
		f, err := fsys.Open(a)
		must(t, err)
		defer f.Close()
		must(t, fsys.Remove(a))
		if got := readAll(t, f); string(got) != "abc" {
			t.Fatalf("removed open file reads %q", got)
		}
		if _, err := fsys.Stat(a); !errors.Is(err, ErrNotExist) {
			t.Fatalf("Stat after Remove: %v", err)
		}
	}},
	{"MkdirListStat", func(t *testing.T, fsys FS, root string) {
		d := path.Join(root, "d", "e", "f")
		must(t, fsys.MkdirAll(d))
		must(t, fsys.MkdirAll(d)) // idempotent
		for _, n := range []string{"zeta", "alpha", "mid"} {
			writeFile(t, fsys, path.Join(root, "d", n), []byte(n))
		}
		names, err := fsys.List(path.Join(root, "d"))
		must(t, err)
		if want := []string{"alpha", "e", "mid", "zeta"}; !slices.Equal(names, want) {
			t.Fatalf("List = %v, want %v", names, want)
		}
		fi, err := fsys.Stat(path.Join(root, "d", "e"))
		must(t, err)
		if !fi.IsDir || fi.Name != "e" {
			t.Fatalf("Stat dir = %+v", fi)
		}
		fi, err = fsys.Stat(path.Join(root, "d", "alpha"))
		must(t, err)
		if fi.IsDir || fi.Name != "alpha" || fi.Size != 5 {
			t.Fatalf("Stat file = %+v", fi)
		}
		must(t, fsys.SyncDir(path.Join(root, "d")))
		wantErr(t, fsys.Remove(path.Join(root, "d", "e")), "remove", path.Join(root, "d", "e"), nil)
		must(t, fsys.Remove(d))
		must(t, fsys.RemoveAll(path.Join(root, "d")))
		if _, err := fsys.Stat(path.Join(root, "d")); !errors.Is(err, ErrNotExist) {
			t.Fatalf("RemoveAll left %v", err)
		}
	}},
	{"RenameDir", func(t *testing.T, fsys FS, root string) {
		must(t, fsys.MkdirAll(path.Join(root, "tmp", "sub")))
		writeFile(t, fsys, path.Join(root, "tmp", "sub", "f"), []byte("x"))
		must(t, fsys.Rename(path.Join(root, "tmp"), path.Join(root, "final")))
		if got := contentOf(t, fsys, path.Join(root, "final", "sub", "f")); string(got) != "x" {
			t.Fatalf("content %q", got)
		}
		names, err := fsys.List(root)
		must(t, err)
		if !slices.Equal(names, []string{"final"}) {
			t.Fatalf("List = %v", names)
		}
	}},
	{"SyncAndSyncDir", func(t *testing.T, fsys FS, root string) {
		f, err := fsys.Create(path.Join(root, "a"))
		must(t, err)
		_, err = f.Append([]byte("x"))
		must(t, err)
		must(t, f.Sync())
		must(t, f.Close())
		must(t, fsys.SyncDir(root))
		wantErr(t, fsys.SyncDir(path.Join(root, "nope")), "syncdir", path.Join(root, "nope"), ErrNotExist)
	}},
}

// TestConformance runs the FS contract against every implementation.
func TestConformance(t *testing.T) {
	for _, impl := range fsImpls {
		t.Run(impl.name, func(t *testing.T) {
			for _, tc := range conformanceCases {
				t.Run(tc.name, func(t *testing.T) {
					fsys, root := impl.make(t)
					tc.run(t, fsys, root)
				})
			}
		})
	}
}
