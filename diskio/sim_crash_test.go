package diskio

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"testing"

	"pgregory.net/rapid"
)

// crashModel is what a file should hold: its synced content and the state
// after each op since.
type crashModel struct {
	h       File
	durable []byte
	states  [][]byte       // content after ops[i]
	ops     []crashModelOp // unsynced writes and truncates, oldest first
}

type crashModelOp struct {
	write       bool
	off, length int64
}

func (m *crashModel) current() []byte {
	if len(m.states) == 0 {
		return m.durable
	}
	return m.states[len(m.states)-1]
}

// state returns the content after the first k unsynced ops.
func (m *crashModel) state(k int) []byte {
	if k == 0 {
		return m.durable
	}
	return m.states[k-1]
}

func (m *crashModel) record(op crashModelOp, next []byte) {
	m.ops = append(m.ops, op)
	m.states = append(m.states, next)
}

var crashFileNames = []string{"f0", "f1", "d/f2"}

type crashMachine struct {
	s     *Sim
	files map[string]*crashModel
}

func (cm *crashMachine) existing(t *rapid.T) (string, *crashModel) {
	names := make([]string, 0, len(cm.files))
	for n := range cm.files {
		names = append(names, n)
	}
	if len(names) == 0 {
		t.Skip("no files")
	}
	sort.Strings(names)
	n := rapid.SampledFrom(names).Draw(t, "file")
	return n, cm.files[n]
}

func (cm *crashMachine) drop(name string) {
	if m, ok := cm.files[name]; ok {
		_ = m.h.Close()
		delete(cm.files, name)
	}
}

func (cm *crashMachine) actions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"create": func(t *rapid.T) {
			name := rapid.SampledFrom(crashFileNames).Draw(t, "name")
			h, err := cm.s.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			cm.drop(name)
			cm.files[name] = &crashModel{h: h, durable: []byte{}}
		},
		"writeAt": func(t *rapid.T) {
			_, m := cm.existing(t)
			cur := m.current()
			off := rapid.Int64Range(0, int64(len(cur))+8).Draw(t, "off")
			data := rapid.SliceOfN(rapid.Byte(), 0, 16).Draw(t, "data")
			if _, err := m.h.WriteAt(data, off); err != nil {
				t.Fatal(err)
			}
			next := resizeBytes(slices.Clone(cur), max(int64(len(cur)), off+int64(len(data))))
			copy(next[off:], data)
			m.record(crashModelOp{write: true, off: off, length: int64(len(data))}, next)
		},
		"append": func(t *rapid.T) {
			_, m := cm.existing(t)
			cur := m.current()
			data := rapid.SliceOfN(rapid.Byte(), 0, 16).Draw(t, "data")
			if _, err := m.h.Append(data); err != nil {
				t.Fatal(err)
			}
			m.record(crashModelOp{write: true, off: int64(len(cur)), length: int64(len(data))}, append(slices.Clone(cur), data...))
		},
		"truncate": func(t *rapid.T) {
			_, m := cm.existing(t)
			cur := m.current()
			size := rapid.Int64Range(0, int64(len(cur))+8).Draw(t, "size")
			if err := m.h.Truncate(size); err != nil {
				t.Fatal(err)
			}
			m.record(crashModelOp{off: size}, resizeBytes(slices.Clone(cur), size))
		},
		"sync": func(t *rapid.T) {
			_, m := cm.existing(t)
			if err := m.h.Sync(); err != nil {
				t.Fatal(err)
			}
			m.durable, m.states, m.ops = m.current(), nil, nil
		},
		"rename": func(t *rapid.T) {
			from, m := cm.existing(t)
			to := rapid.SampledFrom(crashFileNames).Draw(t, "to")
			if err := cm.s.Rename(from, to); err != nil {
				t.Fatal(err)
			}
			if from != to {
				cm.drop(to)
				delete(cm.files, from)
				cm.files[to] = m
			}
		},
		"remove": func(t *rapid.T) {
			name, _ := cm.existing(t)
			if err := cm.s.Remove(name); err != nil {
				t.Fatal(err)
			}
			cm.drop(name)
		},
		"": func(t *rapid.T) { // invariant: reads and DurableFile follow the model
			for name, m := range cm.files {
				cur, err := cm.s.ReadFile(name)
				if err != nil || !bytes.Equal(cur, m.current()) {
					t.Fatalf("%s: ReadFile = %x, %v; model %x", name, cur, err, m.current())
				}
				dur, err := cm.s.DurableFile(name)
				if err != nil || !bytes.Equal(dur, m.durable) {
					t.Fatalf("%s: DurableFile = %x, %v; model %x", name, dur, err, m.durable)
				}
			}
		},
	}
}

// afterFreeze does writes, syncs and metadata ops that must reach no image.
func (cm *crashMachine) afterFreeze(t *rapid.T) {
	for _, m := range cm.files {
		if _, err := m.h.Append([]byte("late")); err != nil {
			t.Fatal(err)
		}
		if err := m.h.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if f, err := cm.s.Create("late"); err != nil {
		t.Fatal(err)
	} else {
		_ = f.Close()
	}
}

// checkImage asserts img holds exactly the model's files, each with content
// allowed by mode.
func (cm *crashMachine) checkImage(t *rapid.T, img *Sim, mode CrashMode) {
	var want []string
	for n := range cm.files {
		want = append(want, n)
	}
	sort.Strings(want)
	var got []string
	for _, dir := range []string{".", "d"} {
		names, err := img.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			p := cleanPath(dir + "/" + n)
			if p != "d" {
				got = append(got, p)
			}
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("%v image has files %v, model %v", mode, got, want)
	}
	for _, name := range want {
		m := cm.files[name]
		data, err := img.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if dur, _ := img.DurableFile(name); !bytes.Equal(dur, data) {
			t.Fatalf("%s: image is not all synced", name)
		}
		if err := m.allows(mode, data); err != nil {
			t.Fatalf("%v image of %s: %v", mode, name, err)
		}
	}
}

func (m *crashModel) allows(mode CrashMode, data []byte) error {
	if bytes.Equal(data, m.durable) {
		return nil
	}
	if mode == CrashSyncedOnly {
		return fmt.Errorf("got %x, synced %x", data, m.durable)
	}
	for k := 1; k <= len(m.ops); k++ {
		if bytes.Equal(data, m.state(k)) {
			return nil
		}
		if mode == CrashTornPrefix && m.ops[k-1].write && tornMatch(data, m.state(k-1), m.state(k), m.ops[k-1]) {
			return nil
		}
	}
	return fmt.Errorf("got %x, not the synced %x plus a prefix of %d later ops", data, m.durable, len(m.ops))
}

// tornMatch: data is write op applied to prev, with anything in the op's
// range, a length between prev's and the write's end, and everything outside
// the range unchanged.
func tornMatch(data, prev, next []byte, op crashModelOp) bool {
	sizeOld, end := int64(len(prev)), op.off+op.length
	size := int64(len(data))
	if size < sizeOld || size > max(sizeOld, end) {
		return false
	}
	for i := int64(0); i < size; i++ {
		switch {
		case i < op.off && data[i] != next[i]:
			return false
		case i >= end && data[i] != prev[i]:
			return false
		}
	}
	return true
}

func TestSimCrashProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seed := rapid.Int64().Draw(t, "seed")
		cm := &crashMachine{s: NewSim(seed), files: make(map[string]*crashModel)}
		if err := cm.s.MkdirAll("d"); err != nil {
			t.Fatal(err)
		}
		t.Repeat(cm.actions())
		if rapid.Bool().Draw(t, "freezeEarly") {
			cm.s.Freeze()
			cm.afterFreeze(t)
		}
		for _, mode := range []CrashMode{CrashSyncedOnly, CrashRandomPrefix, CrashTornPrefix} {
			for range 3 {
				cm.checkImage(t, cm.s.CrashImage(mode), mode)
			}
		}
	})
}

// TestSimCrashTornHappens makes sure torn mode does produce torn and prefix
// images (the property test would pass if it never tore anything).
func TestSimCrashTornHappens(t *testing.T) {
	s := NewSim(42)
	f, err := s.Create("f")
	must(t, err)
	_, err = f.Append(bytes.Repeat([]byte{1}, 64))
	must(t, err)
	must(t, f.Sync())
	_, err = f.WriteAt(bytes.Repeat([]byte{2}, 64), 32)
	must(t, err)
	seen := map[string]bool{}
	for range 200 {
		data, err := s.CrashImage(CrashTornPrefix).ReadFile("f")
		must(t, err)
		switch {
		case len(data) == 64 && bytes.Equal(data, bytes.Repeat([]byte{1}, 64)):
			seen["synced"] = true
		case len(data) == 96 && bytes.Equal(data[32:], bytes.Repeat([]byte{2}, 64)):
			seen["whole"] = true
		default:
			seen["torn"] = true
		}
	}
	if len(seen) != 3 {
		t.Fatalf("seed=42: torn images seen %v, want synced, whole and torn", seen)
	}
}

// TestSimSyncDoesNotCopy: Sync of a large file allocates (nearly) nothing.
func TestSimSyncDoesNotCopy(t *testing.T) {
	const fileBytes = 16 << 20
	s := NewSim(1)
	f, err := s.Create("big")
	must(t, err)
	_, err = f.Append(make([]byte, fileBytes))
	must(t, err)
	must(t, f.Truncate(fileBytes/2)) // keep capacity so appends do not realloc
	must(t, f.Sync())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const ops = 100
	chunk := make([]byte, 64)
	for range ops {
		_, err := f.Append(chunk)
		must(t, err)
		must(t, f.Sync())
	}
	runtime.ReadMemStats(&after)
	if allocBytes := after.TotalAlloc - before.TotalAlloc; allocBytes > 1<<20 {
		t.Fatalf("%d Append+Sync on a %d-byte file allocated %d bytes: Sync copies", ops, fileBytes/2, allocBytes)
	}
}

// BenchmarkSimAppendSync: ns/op must not grow with the file size.
func BenchmarkSimAppendSync(b *testing.B) {
	for _, sizeBytes := range []int{0, 1 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("size=%d", sizeBytes), func(b *testing.B) {
			s := NewSim(1)
			f, err := s.Create("f")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Append(make([]byte, sizeBytes)); err != nil {
				b.Fatal(err)
			}
			chunk := make([]byte, 4096)
			b.ResetTimer()
			for b.Loop() {
				if _, err := f.Append(chunk); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
