package group

import (
	"bytes"
	"testing"
)

// TestErrorCodes drives each API path against a fresh Stable group "g"
// (leader A, static follower S "i1", generation 1) and checks the code.
func TestErrorCodes(t *testing.T) {
	type env struct {
		c    *Coordinator
		a, s string
	}
	join := func(e env, mut func(*JoinRequest)) int16 {
		r := jreq("g", e.a, "")
		mut(&r)
		return recvNow(e.c, r).ErrorCode
	}
	hb := func(e env, member, inst string, gen int32) int16 {
		return e.c.Heartbeat(HeartbeatRequest{Group: "g", Generation: gen, MemberID: member, InstanceID: inst})
	}
	syncCode := func(e env, mut func(*SyncRequest)) int16 {
		r := SyncRequest{Group: "g", Generation: 1, MemberID: e.s, InstanceID: "i1"}
		mut(&r)
		resp, _ := e.c.Sync(t.Context(), r)
		return resp.ErrorCode
	}
	leave := func(e env, m LeaveMember) int16 {
		return e.c.Leave(LeaveRequest{Group: "g", Members: []LeaveMember{m}}).SingleErrorCode()
	}
	cases := []struct {
		name string
		opts Options
		run  func(e env) int16
		want int16
	}{
		{"join empty group id", Options{}, func(e env) int16 { return join(e, func(r *JoinRequest) { r.Group = "" }) }, errInvalidGroupID},
		{"join long group id", Options{}, func(e env) int16 {
			return join(e, func(r *JoinRequest) { r.Group = string(bytes.Repeat([]byte("x"), StringBytesMax+1)) })
		}, errInvalidGroupID},
		{"join session too short", Options{}, func(e env) int16 { return join(e, func(r *JoinRequest) { r.SessionTimeoutMs = 5999 }) }, errInvalidSessionTimeout},
		{"join session too long", Options{}, func(e env) int16 { return join(e, func(r *JoinRequest) { r.SessionTimeoutMs = 30*60*1000 + 1 }) }, errInvalidSessionTimeout},
		{"join unknown group with member id", Options{}, func(e env) int16 { return join(e, func(r *JoinRequest) { r.Group = "other" }) }, errUnknownMemberID},
		{"join unknown member", Options{}, func(e env) int16 { return join(e, func(r *JoinRequest) { r.MemberID = "nobody" }) }, errUnknownMemberID},
		{"join other protocol type", Options{}, func(e env) int16 { return join(e, func(r *JoinRequest) { r.ProtocolType = "connect" }) }, errInconsistentProtocol},
		{"join no common protocol", Options{}, func(e env) int16 {
			return join(e, func(r *JoinRequest) { r.MemberID = ""; r.Protocols = []Protocol{{Name: "rr"}} })
		}, errInconsistentProtocol},
		{"join new group without protocols", Options{}, func(e env) int16 {
			return join(e, func(r *JoinRequest) { r.Group, r.MemberID, r.Protocols = "new", "", nil })
		}, errInconsistentProtocol},
		{"join new group without protocol type", Options{}, func(e env) int16 {
			return join(e, func(r *JoinRequest) { r.Group, r.MemberID, r.ProtocolType = "new", "", "" })
		}, errInconsistentProtocol},
		{"join too many protocols", Options{ProtocolsPerMemberMax: 2}, func(e env) int16 {
			return join(e, func(r *JoinRequest) { r.Protocols = append(r.Protocols, Protocol{Name: "rr"}) })
		}, errInvalidRequest},
		{"join metadata too big", Options{MemberMetadataBytesMax: 2}, func(e env) int16 {
			return join(e, func(r *JoinRequest) { r.Protocols[0].Metadata = []byte("mm") })
		}, errInvalidRequest},
		{"join fenced instance", Options{}, func(e env) int16 { return join(e, func(r *JoinRequest) { r.InstanceID = "i1" }) }, errFencedInstanceID},
		{"join unknown instance with member id", Options{}, func(e env) int16 { return join(e, func(r *JoinRequest) { r.InstanceID = "i9" }) }, errUnknownMemberID},
		{"join v4 needs member id", Options{}, func(e env) int16 { return join(e, func(r *JoinRequest) { r.MemberID = "" }) }, errMemberIDRequired},
		{"join v3 group full", Options{MembersPerGroupMax: 2}, func(e env) int16 {
			return join(e, func(r *JoinRequest) { r.MemberID, r.Version = "", 3 })
		}, errGroupMaxSizeReached},
		{"join static group full", Options{MembersPerGroupMax: 2}, func(e env) int16 {
			return join(e, func(r *JoinRequest) { r.MemberID, r.InstanceID = "", "i2" })
		}, errGroupMaxSizeReached},
		{"join static restart in full group", Options{MembersPerGroupMax: 2}, func(e env) int16 {
			return join(e, func(r *JoinRequest) { r.MemberID, r.InstanceID = "", "i1" })
		}, 0},
		{"join follower unchanged", Options{}, func(e env) int16 {
			r := jreq("g", e.s, "i1")
			resp := recvNow(e.c, r)
			if resp.Generation != 1 || resp.Members != nil || resp.LeaderID != e.a {
				return -1
			}
			return resp.ErrorCode
		}, 0},
		{"sync unknown group", Options{}, func(e env) int16 { return syncCode(e, func(r *SyncRequest) { r.Group = "other" }) }, errUnknownMemberID},
		{"sync unknown member", Options{}, func(e env) int16 { return syncCode(e, func(r *SyncRequest) { r.MemberID, r.InstanceID = "x", "" }) }, errUnknownMemberID},
		{"sync bad generation", Options{}, func(e env) int16 { return syncCode(e, func(r *SyncRequest) { r.Generation = 2 }) }, errIllegalGeneration},
		{"sync fenced", Options{}, func(e env) int16 { return syncCode(e, func(r *SyncRequest) { r.MemberID = e.a }) }, errFencedInstanceID},
		{"sync unknown instance", Options{}, func(e env) int16 { return syncCode(e, func(r *SyncRequest) { r.InstanceID = "i9" }) }, errUnknownMemberID},
		{"sync protocol type", Options{}, func(e env) int16 { return syncCode(e, func(r *SyncRequest) { r.ProtocolType = "connect" }) }, errInconsistentProtocol},
		{"sync protocol name", Options{}, func(e env) int16 { return syncCode(e, func(r *SyncRequest) { r.Protocol = "sticky" }) }, errInconsistentProtocol},
		{"sync assignment too big", Options{AssignmentBytesMax: 1}, func(e env) int16 {
			return syncCode(e, func(r *SyncRequest) { r.Assignments = []SyncAssignment{{e.s, []byte("xx")}} })
		}, errInvalidRequest},
		{"sync stable ok", Options{}, func(e env) int16 { return syncCode(e, func(r *SyncRequest) {}) }, 0},
		{"sync while preparing", Options{}, func(e env) int16 {
			goJoin(e.c, jreq("g", e.a, "")) // leader rejoin: rebalance
			settle()
			return syncCode(e, func(r *SyncRequest) {})
		}, errRebalanceInProgress},
		{"heartbeat ok", Options{}, func(e env) int16 { return hb(e, e.a, "", 1) }, 0},
		{"heartbeat unknown group", Options{}, func(e env) int16 {
			return e.c.Heartbeat(HeartbeatRequest{Group: "x", MemberID: e.a, Generation: 1})
		}, errUnknownMemberID},
		{"heartbeat unknown member", Options{}, func(e env) int16 { return hb(e, "x", "", 1) }, errUnknownMemberID},
		{"heartbeat bad generation", Options{}, func(e env) int16 { return hb(e, e.a, "", 0) }, errIllegalGeneration},
		{"heartbeat fenced", Options{}, func(e env) int16 { return hb(e, e.a, "i1", 1) }, errFencedInstanceID},
		{"leave unknown group", Options{}, func(e env) int16 {
			return e.c.Leave(LeaveRequest{Group: "x", Members: []LeaveMember{{MemberID: e.a}}}).SingleErrorCode()
		}, errUnknownMemberID},
		{"leave unknown member", Options{}, func(e env) int16 { return leave(e, LeaveMember{MemberID: "x"}) }, errUnknownMemberID},
		{"leave fenced", Options{}, func(e env) int16 { return leave(e, LeaveMember{MemberID: e.a, InstanceID: "i1"}) }, errFencedInstanceID},
		{"leave by unknown instance", Options{}, func(e env) int16 { return leave(e, LeaveMember{InstanceID: "i9"}) }, errUnknownMemberID},
		{"leave nameless", Options{}, func(e env) int16 { return leave(e, LeaveMember{}) }, errUnknownMemberID},
		{"leave pending", Options{}, func(e env) int16 {
			id := recvNow(e.c, jreq("g", "", "")).MemberID
			code := leave(e, LeaveMember{MemberID: id})
			if recvNow(e.c, jreq("g", id, "")).ErrorCode != errUnknownMemberID {
				return -1
			}
			return code
		}, 0},
		{"leave batch too big", Options{}, func(e env) int16 {
			return e.c.Leave(LeaveRequest{Group: "g", Members: make([]LeaveMember, LeaveMembersMax+1)}).ErrorCode
		}, errInvalidRequest},
		{"commit ok", Options{}, func(e env) int16 { return e.c.ValidateCommit("g", e.s, "i1", 1) }, 0},
		{"commit simple to unknown group", Options{}, func(e env) int16 { return e.c.ValidateCommit("x", "", "", -1) }, 0},
		{"commit generation to unknown group", Options{}, func(e env) int16 { return e.c.ValidateCommit("x", "m", "", 3) }, errIllegalGeneration},
		{"commit simple to active group", Options{}, func(e env) int16 { return e.c.ValidateCommit("g", "", "", -1) }, errUnknownMemberID},
		{"commit unknown member", Options{}, func(e env) int16 { return e.c.ValidateCommit("g", "x", "", 1) }, errUnknownMemberID},
		{"commit bad generation", Options{}, func(e env) int16 { return e.c.ValidateCommit("g", e.a, "", 2) }, errIllegalGeneration},
		{"commit fenced", Options{}, func(e env) int16 { return e.c.ValidateCommit("g", e.a, "i1", 1) }, errFencedInstanceID},
		{"delete unknown", Options{}, func(e env) int16 { return e.c.Delete([]string{"x"})[0].ErrorCode }, errGroupIDNotFound},
		{"delete non-empty", Options{}, func(e env) int16 { return e.c.Delete([]string{"g"})[0].ErrorCode }, errNonEmptyGroup},
		{"groups limit, none empty", Options{GroupsMax: 1}, func(e env) int16 {
			return join(e, func(r *JoinRequest) { r.Group, r.MemberID = "h", "" })
		}, errCoordinatorUnavailable},
		{"groups limit evicts empty", Options{GroupsMax: 1}, func(e env) int16 {
			e.c.Leave(LeaveRequest{Group: "g", Members: []LeaveMember{{MemberID: e.a}, {MemberID: e.s, InstanceID: "i1"}}})
			code := join(e, func(r *JoinRequest) { r.Group, r.MemberID = "h", "" })
			if e.c.Describe([]string{"g"})[0].Known {
				return -1
			}
			return code
		}, errMemberIDRequired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bubble(t, tc.opts, func(t *testing.T, c *Coordinator) {
				a, s := stable2(t, c)
				wantCode(t, tc.name, tc.run(env{c, a, s}), tc.want)
			})
		})
	}
}

func TestProtocolSelection(t *testing.T) {
	g := &group{id: "g", members: map[string]*member{
		"a": {protocols: []Protocol{{Name: "x"}, {Name: "y"}, {Name: "z"}}},
		"b": {protocols: []Protocol{{Name: "y"}, {Name: "x"}}},
		"c": {protocols: []Protocol{{Name: "y"}, {Name: "x"}, {Name: "w"}}},
	}}
	if p := g.selectProtocol(); p != "y" {
		t.Fatalf("selected %q, want y (2 votes)", p)
	}
	g.members["c"].protocols = []Protocol{{Name: "x"}, {Name: "y"}}
	if p := g.selectProtocol(); p != "x" {
		t.Fatalf("selected %q, want x", p)
	}
	if !g.supports("", []Protocol{{Name: "x"}}) || g.supports("", []Protocol{{Name: "z"}}) {
		t.Fatal("supports")
	}
}

func TestParseState(t *testing.T) {
	for _, s := range []State{Empty, PreparingRebalance, CompletingRebalance, Stable, Dead} {
		if got, ok := ParseState(s.String()); !ok || got != s {
			t.Fatalf("%v", s)
		}
	}
	if s, ok := ParseState("stable"); !ok || s != Stable {
		t.Fatal("case-insensitive")
	}
	if _, ok := ParseState("Assigning"); ok {
		t.Fatal("unknown state parsed")
	}
}
