package group

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Kafka error codes returned by this package (kerr codes, 0 = none).
var (
	errNone                   int16 = 0
	errCoordinatorUnavailable       = kerr.CoordinatorNotAvailable.Code
	errNotCoordinator               = kerr.NotCoordinator.Code
	errIllegalGeneration            = kerr.IllegalGeneration.Code
	errInconsistentProtocol         = kerr.InconsistentGroupProtocol.Code
	errInvalidGroupID               = kerr.InvalidGroupID.Code
	errUnknownMemberID              = kerr.UnknownMemberID.Code
	errInvalidSessionTimeout        = kerr.InvalidSessionTimeout.Code
	errRebalanceInProgress          = kerr.RebalanceInProgress.Code
	errInvalidRequest               = kerr.InvalidRequest.Code
	errNonEmptyGroup                = kerr.NonEmptyGroup.Code
	errGroupIDNotFound              = kerr.GroupIDNotFound.Code
	errMemberIDRequired             = kerr.MemberIDRequired.Code
	errGroupMaxSizeReached          = kerr.GroupMaxSizeReached.Code
	errFencedInstanceID             = kerr.FencedInstanceID.Code
)

// State is a classic group's state, named as Kafka names it on the wire
// (DescribeGroups, ListGroups).
type State uint8

const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// ParseState maps a ListGroups states filter entry to a State. Matching is
// case-insensitive (Kafka's classic coordinator matches exactly).
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if strings.EqualFold(n, s) {
			return State(i), true
		}
	}
	return 0, false
}

// Protocol is one entry of JoinGroup's protocol list, in preference order.
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest mirrors kmsg.JoinGroupRequest. Nullable strings are "" when
// null (GroupInstanceID, Reason).
type JoinRequest struct {
	Version            int16 // request version: >= 4 requires a member id, >= 9 may skip assignment
	Group              string
	MemberID           string // "" on the first join
	InstanceID         string // group.instance.id (v5+); "" = dynamic member
	ClientID           string // request header client id
	ClientHost         string // peer address, for DescribeGroups
	SessionTimeoutMs   int32
	RebalanceTimeoutMs int32 // v0: the handler passes SessionTimeoutMs; <= 0 means SessionTimeoutMs
	ProtocolType       string
	Protocols          []Protocol
	Reason             string // v8+, logged only
}

// JoinMember is one member as the leader sees it in its JoinGroup response.
type JoinMember struct {
	MemberID   string
	InstanceID string
	Metadata   []byte // the member's metadata for the selected protocol
}

// JoinResponse mirrors kmsg.JoinGroupResponse.
type JoinResponse struct {
	ErrorCode      int16
	Generation     int32 // -1 on error
	ProtocolType   string
	Protocol       string
	LeaderID       string
	MemberID       string
	SkipAssignment bool         // v9+: the leader must not reassign (static leader restart)
	Members        []JoinMember // leader only, in join order
}

// SyncAssignment is one entry of the leader's SyncGroup assignment list.
type SyncAssignment struct {
	MemberID   string
	Assignment []byte
}

// SyncRequest mirrors kmsg.SyncGroupRequest; ProtocolType and Protocol are
// "" when null (before v5).
type SyncRequest struct {
	Group        string
	Generation   int32
	MemberID     string
	InstanceID   string
	ProtocolType string
	Protocol     string
	Assignments  []SyncAssignment // leader only
}

// SyncResponse mirrors kmsg.SyncGroupResponse.
type SyncResponse struct {
	ErrorCode    int16
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// HeartbeatRequest mirrors kmsg.HeartbeatRequest.
type HeartbeatRequest struct {
	Group      string
	Generation int32
	MemberID   string
	InstanceID string
}

// LeaveMember identifies one leaving member: by MemberID, or (v3+, admin
// removal) by InstanceID alone with MemberID "".
type LeaveMember struct {
	MemberID   string
	InstanceID string
	Reason     string
}

// LeaveRequest mirrors kmsg.LeaveGroupRequest: v0-v2 send one LeaveMember
// with the top-level MemberID.
type LeaveRequest struct {
	Group   string
	Members []LeaveMember
}

// LeaveMemberResult is the per-member outcome of LeaveGroup (v3+).
type LeaveMemberResult struct {
	MemberID   string
	InstanceID string
	ErrorCode  int16
}

// LeaveResponse mirrors kmsg.LeaveGroupResponse.
type LeaveResponse struct {
	ErrorCode int16
	Members   []LeaveMemberResult
}

// SingleErrorCode is the top-level error a v0-v2 LeaveGroup response
// carries: the top-level error, else the first member's (Kafka's rule).
func (r LeaveResponse) SingleErrorCode() int16 {
	if r.ErrorCode != 0 {
		return r.ErrorCode
	}
	for _, m := range r.Members {
		if m.ErrorCode != 0 {
			return m.ErrorCode
		}
	}
	return 0
}

// MemberDescription mirrors kmsg.DescribeGroupsResponseGroupMember.
type MemberDescription struct {
	MemberID   string
	InstanceID string
	ClientID   string
	ClientHost string
	Metadata   []byte // Stable groups only: metadata for the selected protocol
	Assignment []byte // Stable groups only
}

// GroupDescription mirrors kmsg.DescribeGroupsResponseGroup. An unknown group
// is described as Kafka's classic coordinator does: ErrorCode 0, State Dead,
// Known false (v6+ handlers may map that to GROUP_ID_NOT_FOUND).
type GroupDescription struct {
	Group        string
	ErrorCode    int16
	Known        bool
	State        State
	ProtocolType string
	Protocol     string // Stable groups only
	Generation   int32
	Members      []MemberDescription // join order
	// StateName, when set, overrides State.String(): a consumer-protocol
	// group's state (Empty, Assigning, Reconciling, Stable).
	StateName string
}

// GroupListing mirrors kmsg.ListGroupsResponseGroup.
type GroupListing struct {
	Group        string
	ProtocolType string
	State        State  // classic groups
	StateName    string // the state's wire name (either protocol)
	Type         string // "classic" or "consumer" (ListGroups v5 GroupType)
}

// DeleteResult mirrors kmsg.DeleteGroupsResponseGroup. Written, when not
// nil, receives the outcome of the deleted group's tombstone record
// (Options.Persist) once: the deletion is durable only when it says nil
// (or that a newer record of the group superseded it).
type DeleteResult struct {
	Group     string
	ErrorCode int16
	Written   <-chan error
}
