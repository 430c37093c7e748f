package meta

import (
	"encoding/binary"
	"fmt"
)

// enc appends a compact encoding: unsigned integers as uvarints, signed ones
// as zigzag varints, strings and byte slices with a uvarint length prefix.
type enc struct{ b []byte }

func (e *enc) u8(v byte)         { e.b = append(e.b, v) }
func (e *enc) uvar(v uint64)     { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) svar(v int64)      { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string)      { e.uvar(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) id(v TopicID)      { e.b = append(e.b, v[:]...) }
func (e *enc) u32fixed(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *enc) boolean(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

// dec reads what enc wrote. The first error sticks: later reads return zero
// values, so decoders read straight through and check d.err once.
type dec struct {
	b   []byte
	err error
	// sentinel wrapped by every error (ErrBadCommand, ErrBadSnapshot, ...)
	sentinel error
}

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", d.sentinel, fmt.Sprintf(format, args...))
	}
}

func (d *dec) u8() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) boolean() bool {
	switch v := d.u8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("bad bool %d", v)
		return false
	}
}

func (d *dec) uvar() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) svar() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) i32() int32 {
	v := d.svar()
	if v < -1<<31 || v > 1<<31-1 {
		d.fail("int32 out of range: %d", v)
		return 0
	}
	return int32(v)
}

func (d *dec) i16() int16 {
	v := d.svar()
	if v < -1<<15 || v > 1<<15-1 {
		d.fail("int16 out of range: %d", v)
		return 0
	}
	return int16(v)
}

func (d *dec) i8() int8 {
	v := d.svar()
	if v < -1<<7 || v > 1<<7-1 {
		d.fail("int8 out of range: %d", v)
		return 0
	}
	return int8(v)
}

func (d *dec) u32fixed() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

// str reads a string of at most maxLen bytes.
func (d *dec) str(maxLen int) string {
	n := d.uvar()
	if d.err != nil {
		return ""
	}
	if n > uint64(maxLen) || n > uint64(len(d.b)) {
		d.fail("string length %d beyond limit %d or input", n, maxLen)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *dec) id() TopicID {
	var v TopicID
	if d.err != nil {
		return v
	}
	if len(d.b) < len(v) {
		d.fail("truncated")
		return v
	}
	copy(v[:], d.b)
	d.b = d.b[len(v):]
	return v
}

// count reads an element count of at most maxCount. Every element takes at
// least one byte, so a count beyond the remaining input is rejected before
// anything is allocated.
func (d *dec) count(maxCount int) int {
	n := d.uvar()
	if d.err != nil {
		return 0
	}
	if n > uint64(maxCount) || n > uint64(len(d.b)) {
		d.fail("count %d beyond limit %d or input", n, maxCount)
		return 0
	}
	return int(n)
}

// done fails unless the whole input was consumed.
func (d *dec) done() {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
}
