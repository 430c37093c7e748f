package meta

import (
	sm "github.com/lni/dragonboat/v4/statemachine"
)

func entry(index uint64, cmd []byte) sm.Entry { return sm.Entry{Index: index, Cmd: cmd} }
