package meta

import (
	"fmt"
	"strings"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ResultVersion is the first byte of an encoded result.
const ResultVersion byte = 1

// Result is what apply returns for one command.
//
// Packing into dragonboat's sm.Result: Value = uint64(uint16(Code)), so 0
// means success; Data = EncodeResult(r). DecodeResult reverses it on the
// proposer side and checks that Value and the encoded Code agree.
//
// Payload per command:
//   - CreateTopic, CreatePartitions: Topic (the topic after the change);
//   - DeleteTopic: Topic (the deleted topic);
//   - AllocateProducerIDs: ProducerIDs;
//   - CommitOffsets, DeleteOffsets: Partitions, one code per requested
//     partition in request order. In a failed CommitOffsets (Code != 0)
//     nothing was committed, and a partition code of 0 means "valid, not
//     committed because another partition failed": the proposer may retry
//     those alone;
//   - DeleteGroups: Groups, one code per requested group;
//   - AlterScramCredentials: Users, one code per user;
//   - RegisterBroker, UnregisterBroker, AlterConfigs: Code only.
//
// Message explains a non-zero Code for logs and Kafka error messages.
type Result struct {
	Code        int16
	Message     string
	Topic       *Topic
	ProducerIDs ProducerIDBlock
	Partitions  []PartitionCode
	Groups      []GroupCode
	Users       []UserCode
}

// ProducerIDBlock is the producer-id range [First, First+Count).
type ProducerIDBlock struct {
	First int64
	Count int32
}

// PartitionCode is the outcome for one partition.
type PartitionCode struct {
	Topic     string
	Partition int32
	Code      int16
}

// GroupCode is the outcome for one group.
type GroupCode struct {
	Group string
	Code  int16
}

// Err returns the Kafka error for Code, or nil.
func (r Result) Err() error { return kerr.ErrorForCode(r.Code) }

func fail(code int16, format string, args ...any) Result {
	msg := fmt.Sprintf(format, args...)
	if len(msg) > ResultMessageLenMax {
		msg = strings.ToValidUTF8(msg[:ResultMessageLenMax], "")
	}
	return Result{Code: code, Message: msg}
}

// Pack turns r into dragonboat's result.
func (r Result) Pack() sm.Result {
	return sm.Result{Value: uint64(uint16(r.Code)), Data: EncodeResult(r)}
}

// EncodeResult returns r's wire form.
func EncodeResult(r Result) []byte {
	e := &enc{}
	e.u8(ResultVersion)
	e.svar(int64(r.Code))
	e.str(r.Message)
	e.boolean(r.Topic != nil)
	if r.Topic != nil {
		encodeTopic(e, r.Topic)
	}
	e.svar(r.ProducerIDs.First)
	e.svar(int64(r.ProducerIDs.Count))
	e.uvar(uint64(len(r.Partitions)))
	for _, p := range r.Partitions {
		e.str(p.Topic)
		e.svar(int64(p.Partition))
		e.svar(int64(p.Code))
	}
	e.uvar(uint64(len(r.Groups)))
	for _, g := range r.Groups {
		e.str(g.Group)
		e.svar(int64(g.Code))
	}
	e.uvar(uint64(len(r.Users)))
	for _, u := range r.Users {
		e.str(u.User)
		e.svar(int64(u.Code))
	}
	return e.b
}

// DecodeResult parses what Pack produced. Errors wrap ErrBadResult.
func DecodeResult(res sm.Result) (Result, error) {
	d := &dec{b: res.Data, sentinel: ErrBadResult}
	if v := d.u8(); d.err == nil && v != ResultVersion {
		d.fail("unknown version %d", v)
	}
	r := Result{Code: d.i16(), Message: d.str(ResultMessageLenMax)}
	if d.boolean() {
		r.Topic = decodeTopic(d)
	}
	r.ProducerIDs = ProducerIDBlock{First: d.svar(), Count: d.i32()}
	n := d.count(CommitEntriesMax)
	for i := 0; i < n && d.err == nil; i++ {
		r.Partitions = append(r.Partitions, PartitionCode{Topic: d.str(TopicNameLenMax), Partition: d.i32(), Code: d.i16()})
	}
	n = d.count(DeleteGroupsMax)
	for i := 0; i < n && d.err == nil; i++ {
		r.Groups = append(r.Groups, GroupCode{Group: d.str(GroupIDLenMax), Code: d.i16()})
	}
	n = d.count(ScramAlterMax)
	for i := 0; i < n && d.err == nil; i++ {
		r.Users = append(r.Users, UserCode{User: d.str(ScramUserLenMax), Code: d.i16()})
	}
	d.done()
	if d.err == nil && res.Value != uint64(uint16(r.Code)) {
		d.fail("value %d disagrees with code %d", res.Value, r.Code)
	}
	if d.err != nil {
		return Result{}, d.err
	}
	return r, nil
}

// encodeTopic and decodeTopic are shared by results and snapshots.
func encodeTopic(e *enc, t *Topic) {
	e.str(t.Name)
	e.id(t.ID)
	e.uvar(uint64(len(t.Partitions)))
	for _, p := range t.Partitions {
		e.svar(int64(p.Index))
		e.uvar(p.ShardID)
		e.uvar(uint64(len(p.Replicas)))
		for _, r := range p.Replicas {
			e.svar(int64(r))
		}
	}
	encodeConfigs(e, t.Configs)
}

func decodeTopic(d *dec) *Topic {
	t := &Topic{Name: d.str(TopicNameLenMax), ID: d.id()}
	n := d.count(PartitionsPerTopicMax)
	for i := 0; i < n && d.err == nil; i++ {
		p := Partition{Index: d.i32(), ShardID: d.uvar()}
		nr := d.count(ReplicationFactorMax)
		for j := 0; j < nr && d.err == nil; j++ {
			p.Replicas = append(p.Replicas, d.i32())
		}
		t.Partitions = append(t.Partitions, p)
	}
	t.Configs = decodeConfigs(d)
	return t
}
