package server

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

// Any header written the way clients write it parses back to its fields, and
// the body is what follows.
func TestHeaderRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		key := rapid.Int16().Draw(t, "key")
		version := rapid.Int16().Draw(t, "version")
		corr := rapid.Int32().Draw(t, "corr")
		null := rapid.Bool().Draw(t, "nullClientID")
		clientID := rapid.StringN(0, 40, 300).Draw(t, "clientID")
		flexible := rapid.Bool().Draw(t, "flexible")
		body := rapid.SliceOfN(rapid.Byte(), 0, 64).Draw(t, "body")

		var tags kmsg.Tags
		for i, n := 0, rapid.IntRange(0, 3).Draw(t, "tags"); i < n; i++ {
			tags.Set(uint32(i), rapid.SliceOfN(rapid.Byte(), 0, 200).Draw(t, "tag"))
		}
		b := []byte{byte(uint16(key) >> 8), byte(key), byte(uint16(version) >> 8), byte(version),
			byte(uint32(corr) >> 24), byte(uint32(corr) >> 16), byte(uint32(corr) >> 8), byte(corr)}
		if null {
			b = append(b, 0xff, 0xff)
		} else {
			b = append(b, byte(len(clientID)>>8), byte(len(clientID)))
			b = append(b, clientID...)
		}
		if flexible {
			b = tags.AppendEach(appendUvarint(b, uint32(tags.Len())))
		}
		b = append(b, body...)

		h, err := parseHeaderPrefix(b)
		if err != nil {
			t.Fatal(err)
		}
		h, rest, err := parseHeaderRest(b, h, flexible)
		if err != nil {
			t.Fatal(err)
		}
		wantID := clientID
		if null {
			wantID = ""
		}
		if h.key != key || h.version != version || h.corr != corr || h.clientID != wantID || string(rest) != string(body) {
			t.Fatalf("parsed %+v body %x", h, rest)
		}
	})
}

func appendUvarint(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// Any prefix of a valid header is rejected with a sentinel, never a panic.
func TestHeaderTruncationsRejected(t *testing.T) {
	full := []byte{0, 18, 0, 3, 0, 0, 0, 1, 0, 3, 'a', 'b', 'c', 1, 0, 2, 9, 9}
	for n := range len(full) {
		h, err := parseHeaderPrefix(full[:n])
		if err == nil {
			_, _, err = parseHeaderRest(full[:n], h, true)
		}
		if !errors.Is(err, ErrMalformedHeader) {
			t.Fatalf("prefix %d: err %v", n, err)
		}
	}
	if _, _, err := parseHeaderRest(full, requestHeader{}, true); err != nil {
		t.Fatal(err)
	}
}

func TestByteReaderUvarint(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want uint32
		ok   bool
	}{
		{[]byte{0}, 0, true},
		{[]byte{0x7f}, 127, true},
		{[]byte{0x80, 1}, 128, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 0xffffffff, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x10}, 0, false}, // overflows uint32
		{[]byte{0x80}, 0, false},
		{nil, 0, false},
	} {
		r := byteReader{src: tc.in}
		if got := r.Uvarint(); got != tc.want || r.Ok() != tc.ok {
			t.Errorf("Uvarint(%x) = %d ok=%v, want %d ok=%v", tc.in, got, r.Ok(), tc.want, tc.ok)
		}
	}
}
