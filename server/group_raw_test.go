package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/node"
)

// fastGroups shortens the coordinator's delays for tests: the initial
// rebalance delay (Kafka's 3 s) and the minimum session timeout (6 s).
func fastGroups(bc *BrokerConfig) {
	bc.Groups.InitialRebalanceDelay = 100 * time.Millisecond
	bc.Groups.SessionTimeoutMin = 500 * time.Millisecond
}

func grpCreateTopic(t testing.TB, b *Broker, name string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	res := b.Node.CreateTopics(ctx, []node.TopicSpec{{Name: name, Partitions: partitions, ReplicationFactor: -1}}, false)
	if len(res) != 1 || (res[0].ErrorCode != 0 && res[0].ErrorCode != kerr.TopicAlreadyExists.Code) {
		t.Fatalf("create topic %s: %+v", name, res)
	}
}

func grpWantCode(t testing.TB, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
	}
}

// rawJoin joins group at version v as a new member (handling
// MEMBER_ID_REQUIRED for v4+) and returns the response.
func rawJoin(t testing.TB, addr, grp string, v int16) *kmsg.JoinGroupResponse {
	t.Helper()
	join := func(member string) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.SetVersion(v)
		req.Group, req.MemberID, req.ProtocolType = grp, member, "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 5000, 5000
		md := kmsg.NewConsumerMemberMetadata()
		md.Topics = []string{"rawt"}
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", md.AppendTo(nil)
		req.Protocols = []kmsg.JoinGroupRequestProtocol{p}
		return rawRoundTrip(t, addr, req).(*kmsg.JoinGroupResponse)
	}
	resp := join("")
	if v >= 4 {
		grpWantCode(t, fmt.Sprintf("JoinGroup v%d first join", v), resp.ErrorCode, kerr.MemberIDRequired.Code)
		resp = join(resp.MemberID)
	}
	grpWantCode(t, fmt.Sprintf("JoinGroup v%d", v), resp.ErrorCode, 0)
	if resp.Generation != 1 || resp.LeaderID != resp.MemberID || len(resp.Members) != 1 || resp.Protocol == nil || *resp.Protocol != "range" {
		t.Fatalf("JoinGroup v%d: %+v", v, resp)
	}
	if v >= 7 && (resp.ProtocolType == nil || *resp.ProtocolType != "consumer") {
		t.Fatalf("JoinGroup v%d: protocol type %v", v, resp.ProtocolType)
	}
	return resp
}

// rawSync completes the sync as the only member at version v.
func rawSync(t testing.TB, addr, grp string, j *kmsg.JoinGroupResponse, v int16) {
	t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.SetVersion(v)
	req.Group, req.Generation, req.MemberID = grp, j.Generation, j.MemberID
	if v >= 5 {
		pt, p := "consumer", "range"
		req.ProtocolType, req.Protocol = &pt, &p
	}
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = j.MemberID, []byte("assignment")
	req.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{a}
	resp := rawRoundTrip(t, addr, req).(*kmsg.SyncGroupResponse)
	grpWantCode(t, fmt.Sprintf("SyncGroup v%d", v), resp.ErrorCode, 0)
	if string(resp.MemberAssignment) != "assignment" || (v >= 5 && (resp.Protocol == nil || *resp.Protocol != "range")) {
		t.Fatalf("SyncGroup v%d: %+v", v, resp)
	}
}

// TestGroupRawVersions sends every advertised version of every group API
// on the wire (rawRoundTrip) to a one-node cluster and checks the
// answers; then, on three nodes, that non-coordinators answer
// NOT_COORDINATOR and FindCoordinator names the controller leader
// everywhere.
func TestGroupRawVersions(t *testing.T) {
	c := startClusterWith(t, 1, nil, fastGroups)
	addr := c.addrs[1]
	grpCreateTopic(t, c.broker(1), "rawt", 2)

	// FindCoordinator v0-6.
	for v := int16(0); v <= 6; v++ {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.SetVersion(v)
		req.CoordinatorKey, req.CoordinatorKeys = "g", []string{"g", "h"}
		resp := rawRoundTrip(t, addr, req).(*kmsg.FindCoordinatorResponse)
		if v < 4 {
			if resp.ErrorCode != 0 || resp.NodeID != 1 || resp.Host != "127.0.0.1" || fmt.Sprint(resp.Port) != grpPortOf(addr) {
				t.Fatalf("FindCoordinator v%d: %+v", v, resp)
			}
		} else if len(resp.Coordinators) != 2 || resp.Coordinators[1].Key != "h" || resp.Coordinators[1].NodeID != 1 || resp.Coordinators[1].ErrorCode != 0 {
			t.Fatalf("FindCoordinator v%d: %+v", v, resp)
		}
		if v >= 1 {
			req.CoordinatorType = 1
			resp := rawRoundTrip(t, addr, req).(*kmsg.FindCoordinatorResponse)
			code := resp.ErrorCode
			if v >= 4 {
				code = resp.Coordinators[0].ErrorCode
			}
			grpWantCode(t, fmt.Sprintf("FindCoordinator v%d transaction", v), code, 0)
		}
	}

	// JoinGroup v0-9, SyncGroup v0-5, Heartbeat v0-4, OffsetCommit v2-9,
	// OffsetFetch v1-9, LeaveGroup v0-5: one fresh group per version.
	for v := int16(0); v <= 9; v++ {
		grp := fmt.Sprintf("raw-%d", v)
		j := rawJoin(t, addr, grp, v)
		rawSync(t, addr, grp, j, min(v, 5))
		if v <= 4 {
			hb := kmsg.NewPtrHeartbeatRequest()
			hb.SetVersion(v)
			hb.Group, hb.Generation, hb.MemberID = grp, j.Generation, j.MemberID
			grpWantCode(t, fmt.Sprintf("Heartbeat v%d", v), rawRoundTrip(t, addr, hb).(*kmsg.HeartbeatResponse).ErrorCode, 0)
			hb.Generation++
			grpWantCode(t, fmt.Sprintf("Heartbeat v%d bad generation", v), rawRoundTrip(t, addr, hb).(*kmsg.HeartbeatResponse).ErrorCode, kerr.IllegalGeneration.Code)
		}
		if v >= 2 {
			oc := kmsg.NewPtrOffsetCommitRequest()
			oc.SetVersion(v)
			oc.Group, oc.Generation, oc.MemberID = grp, j.Generation, j.MemberID
			ot := kmsg.NewOffsetCommitRequestTopic()
			ot.Topic = "rawt"
			for p := int32(0); p < 3; p++ { // partition 2 does not exist
				op := kmsg.NewOffsetCommitRequestTopicPartition()
				op.Partition, op.Offset, op.LeaderEpoch = p, int64(10*v)+int64(p), 3
				md := fmt.Sprintf("md%d", p)
				op.Metadata = &md
				ot.Partitions = append(ot.Partitions, op)
			}
			oc.Topics = []kmsg.OffsetCommitRequestTopic{ot}
			resp := rawRoundTrip(t, addr, oc).(*kmsg.OffsetCommitResponse)
			ps := resp.Topics[0].Partitions
			if len(ps) != 3 || ps[0].ErrorCode != 0 || ps[1].ErrorCode != 0 || ps[2].ErrorCode != kerr.UnknownTopicOrPartition.Code {
				t.Fatalf("OffsetCommit v%d: %+v", v, resp)
			}
			oc.Generation++
			resp = rawRoundTrip(t, addr, oc).(*kmsg.OffsetCommitResponse)
			grpWantCode(t, fmt.Sprintf("OffsetCommit v%d bad generation", v), resp.Topics[0].Partitions[0].ErrorCode, kerr.IllegalGeneration.Code)
		}
	}
	for v := int16(1); v <= 9; v++ {
		grp := fmt.Sprintf("raw-%d", max(v, 2))
		wantOff := int64(10*max(v, 2)) + 1
		wantEpoch := int32(-1)
		if v >= 5 && max(v, 2) >= 6 {
			wantEpoch = 3
		}
		of := kmsg.NewPtrOffsetFetchRequest()
		of.SetVersion(v)
		if v < 8 {
			of.Group = grp
			ot := kmsg.NewOffsetFetchRequestTopic()
			ot.Topic, ot.Partitions = "rawt", []int32{1, 0}
			of.Topics = []kmsg.OffsetFetchRequestTopic{ot}
		} else {
			for _, g := range []string{grp, "nope"} {
				rg := kmsg.NewOffsetFetchRequestGroup()
				rg.Group = g
				gt := kmsg.NewOffsetFetchRequestGroupTopic()
				gt.Topic, gt.Partitions = "rawt", []int32{1, 0}
				rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{gt}
				of.Groups = append(of.Groups, rg)
			}
		}
		resp := rawRoundTrip(t, addr, of).(*kmsg.OffsetFetchResponse)
		var off int64
		var epoch int32
		var md *string
		if v < 8 {
			grpWantCode(t, fmt.Sprintf("OffsetFetch v%d", v), resp.ErrorCode, 0)
			p := resp.Topics[0].Partitions[0]
			off, epoch, md = p.Offset, p.LeaderEpoch, p.Metadata
		} else {
			if len(resp.Groups) != 2 || resp.Groups[1].Topics[0].Partitions[0].Offset != -1 {
				t.Fatalf("OffsetFetch v%d: %+v", v, resp)
			}
			p := resp.Groups[0].Topics[0].Partitions[0]
			off, epoch, md = p.Offset, p.LeaderEpoch, p.Metadata
		}
		if v < 5 {
			epoch = wantEpoch
		}
		if off != wantOff || epoch != wantEpoch || md == nil || *md != "md1" {
			t.Fatalf("OffsetFetch v%d: offset %d epoch %d md %v, want %d %d md1", v, off, epoch, md, wantOff, wantEpoch)
		}
		if v >= 2 && v < 8 { // null topics: every committed offset
			of.Topics = nil
			resp := rawRoundTrip(t, addr, of).(*kmsg.OffsetFetchResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
				t.Fatalf("OffsetFetch v%d all: %+v", v, resp)
			}
		}
	}

	// DescribeGroups v0-5 and ListGroups v0-5 while raw-0..9 are Stable.
	for v := int16(0); v <= 5; v++ {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.SetVersion(v)
		req.Groups = []string{"raw-3", "unknown"}
		req.IncludeAuthorizedOperations = true
		resp := rawRoundTrip(t, addr, req).(*kmsg.DescribeGroupsResponse)
		g := resp.Groups[0]
		if len(resp.Groups) != 2 || g.State != "Stable" || g.Protocol != "range" || len(g.Members) != 1 ||
			string(g.Members[0].MemberAssignment) != "assignment" || g.Members[0].ClientID != "raw-test" || resp.Groups[1].State != "Dead" {
			t.Fatalf("DescribeGroups v%d: %+v", v, resp)
		}
		if v >= 3 && g.AuthorizedOperations != groupOperations {
			t.Fatalf("DescribeGroups v%d: operations %d", v, g.AuthorizedOperations)
		}
		lreq := kmsg.NewPtrListGroupsRequest()
		lreq.SetVersion(v)
		if v >= 4 {
			lreq.StatesFilter = []string{"stable"}
		}
		if v >= 5 {
			lreq.TypesFilter = []string{"Classic"}
		}
		lresp := rawRoundTrip(t, addr, lreq).(*kmsg.ListGroupsResponse)
		if lresp.ErrorCode != 0 || len(lresp.Groups) != 10 || lresp.Groups[0].Group != "raw-0" || lresp.Groups[0].ProtocolType != "consumer" {
			t.Fatalf("ListGroups v%d: %+v", v, lresp)
		}
		if v >= 4 && lresp.Groups[0].GroupState != "Stable" || v >= 5 && lresp.Groups[0].GroupType != "classic" {
			t.Fatalf("ListGroups v%d: %+v", v, lresp.Groups[0])
		}
	}

	// LeaveGroup v0-5: raw-v's member leaves; the group is Empty.
	for v := int16(0); v <= 5; v++ {
		grp := fmt.Sprintf("raw-%d", v)
		d := rawRoundTrip(t, addr, &kmsg.DescribeGroupsRequest{Version: 0, Groups: []string{grp}}).(*kmsg.DescribeGroupsResponse)
		member := d.Groups[0].Members[0].MemberID
		req := kmsg.NewPtrLeaveGroupRequest()
		req.SetVersion(v)
		req.Group = grp
		if v < 3 {
			req.MemberID = member
		} else {
			m := kmsg.NewLeaveGroupRequestMember()
			m.MemberID = member
			req.Members = []kmsg.LeaveGroupRequestMember{m, {MemberID: "ghost"}}
		}
		resp := rawRoundTrip(t, addr, req).(*kmsg.LeaveGroupResponse)
		grpWantCode(t, fmt.Sprintf("LeaveGroup v%d", v), resp.ErrorCode, 0)
		if v >= 3 && (len(resp.Members) != 2 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code) {
			t.Fatalf("LeaveGroup v%d: %+v", v, resp)
		}
	}

	// OffsetDelete v0: raw-6 is Stable and subscribes to rawt; raw-2 is
	// Empty.
	for _, tc := range []struct {
		grp       string
		top, part int16
	}{{"raw-6", 0, kerr.GroupSubscribedToTopic.Code}, {"raw-2", 0, 0}, {"nope", kerr.GroupIDNotFound.Code, 0}} {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = tc.grp
		req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "rawt", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
		resp := rawRoundTrip(t, addr, req).(*kmsg.OffsetDeleteResponse)
		grpWantCode(t, "OffsetDelete "+tc.grp, resp.ErrorCode, tc.top)
		if tc.top == 0 {
			grpWantCode(t, "OffsetDelete partition "+tc.grp, resp.Topics[0].Partitions[0].ErrorCode, tc.part)
		}
	}

	// DeleteGroups v0-2: raw-0..2 are Empty (deleted), raw-9 is not.
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.SetVersion(v)
		req.Groups = []string{fmt.Sprintf("raw-%d", v), "raw-9", "nope"}
		resp := rawRoundTrip(t, addr, req).(*kmsg.DeleteGroupsResponse)
		for i, want := range []int16{0, kerr.NonEmptyGroup.Code, kerr.GroupIDNotFound.Code} {
			grpWantCode(t, fmt.Sprintf("DeleteGroups v%d %s", v, req.Groups[i]), resp.Groups[i].ErrorCode, want)
		}
	}
	if gs, _ := c.broker(1).Node.OffsetGroups(); len(gs) != 7 || gs[0] != "raw-3" {
		t.Fatalf("offset groups after deletes: %v", gs)
	}
}

func grpPortOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return ""
}
