package meta

import "unicode"

// unicodeRange is the rune table genStr draws from: ASCII plus a few
// multi-byte runes, so that byte lengths and rune counts differ.
func unicodeRange() unicode.RangeTable {
	return unicode.RangeTable{R16: []unicode.Range16{{Lo: 0x20, Hi: 0x7e, Stride: 1}, {Lo: 0xe9, Hi: 0xe9, Stride: 1}, {Lo: 0x4e16, Hi: 0x4e16, Stride: 1}}}
}
