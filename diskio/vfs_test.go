package diskio

import (
	"errors"
	"io"
	"io/fs"
	"slices"
	"testing"

	"github.com/cockroachdb/errors/oserror"
	"github.com/lni/vfs"
)

func TestVFSAdapter(t *testing.T) {
	for _, impl := range fsImpls {
		t.Run(impl.name, func(t *testing.T) {
			fsys, root := impl.make(t)
			v := NewVFS(fsys)
			dir := v.PathJoin(root, "db")
			must(t, v.MkdirAll(dir, 0o700))
			name := v.PathJoin(dir, "f")

			f, err := v.Create(name)
			must(t, err)
			for _, s := range []string{"hello ", "world"} {
				_, err := f.Write([]byte(s))
				must(t, err)
			}
			if pos, err := f.Seek(0, io.SeekCurrent); err != nil || pos != 11 {
				t.Fatalf("Seek current = %d %v", pos, err)
			}
			_, err = f.Seek(-5, io.SeekEnd)
			must(t, err)
			_, err = f.Write([]byte("WORLD"))
			must(t, err)
			_, err = f.Seek(0, io.SeekStart)
			must(t, err)
			got, err := io.ReadAll(f)
			must(t, err)
			if string(got) != "hello WORLD" {
				t.Fatalf("read %q", got)
			}
			fi, err := f.Stat()
			must(t, err)
			if fi.Size() != 11 || fi.IsDir() || fi.Name() != "f" {
				t.Fatalf("Stat = %v %v %v", fi.Size(), fi.IsDir(), fi.Name())
			}
			must(t, f.Sync())
			must(t, f.Close())

			a, err := v.OpenForAppend(name)
			must(t, err)
			_, err = a.Write([]byte("!"))
			must(t, err)
			must(t, a.Close())

			must(t, v.Link(name, v.PathJoin(dir, "g")))
			r, err := v.Open(v.PathJoin(dir, "g"), vfs.SequentialReadsOption)
			must(t, err)
			got, err = io.ReadAll(r)
			must(t, err)
			must(t, r.Close())
			if string(got) != "hello WORLD!" {
				t.Fatalf("linked copy %q", got)
			}

			w, err := v.ReuseForWrite(v.PathJoin(dir, "g"), v.PathJoin(dir, "h"))
			must(t, err)
			_, err = w.Write([]byte("J"))
			must(t, err)
			must(t, w.Close())

			names, err := v.List(dir)
			must(t, err)
			if !slices.Equal(names, []string{"f", "h"}) {
				t.Fatalf("List = %v", names)
			}
			must(t, v.Rename(v.PathJoin(dir, "h"), v.PathJoin(dir, "i")))
			st, err := v.Stat(v.PathJoin(dir, "i"))
			must(t, err)
			if st.Size() != 12 {
				t.Fatalf("renamed size %d", st.Size())
			}

			lockName := v.PathJoin(dir, "LOCK")
			l, err := v.Lock(lockName)
			must(t, err)
			if _, err := v.Lock(lockName); !errors.Is(err, ErrLocked) {
				t.Fatalf("second Lock: %v", err)
			}
			must(t, l.Close())
			l, err = v.Lock(lockName)
			must(t, err)
			must(t, l.Close())

			d, err := v.OpenDir(dir)
			must(t, err)
			must(t, d.Sync())
			must(t, d.Close())

			_, err = v.Stat(v.PathJoin(dir, "missing"))
			if !oserror.IsNotExist(err) || !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("missing Stat: %v is not IsNotExist", err)
			}
			_, err = v.OpenDir(v.PathJoin(dir, "missing"))
			if !oserror.IsNotExist(err) {
				t.Fatalf("missing OpenDir: %v", err)
			}
			if err := v.Link(name, v.PathJoin(dir, "f")); !oserror.IsExist(err) {
				t.Fatalf("Link over existing: %v", err)
			}
			du, err := v.GetDiskUsage(dir)
			must(t, err)
			if du.TotalBytes == 0 || du.AvailBytes > du.TotalBytes {
				t.Fatalf("disk usage %+v", du)
			}
			must(t, v.RemoveAll(dir))
		})
	}
}

func TestVFSNoSpace(t *testing.T) {
	s := NewSim(3)
	s.SetFaults(Faults{CapacityBytes: 10})
	v := NewVFS(s)
	f, err := v.Create("f")
	must(t, err)
	defer f.Close()
	_, err = f.Write(make([]byte, 11))
	if !vfs.IsNoSpaceError(err) || !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write past capacity: %v", err)
	}
	du, err := v.GetDiskUsage("")
	must(t, err)
	if du.TotalBytes != 10 || du.AvailBytes != 10 {
		t.Fatalf("disk usage %+v", du)
	}
}
