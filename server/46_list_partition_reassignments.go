package server

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/node"
)

// ListPartitionReassignments: v0
//
// Behaviour:
//   - Lists the moves in progress from this broker's controller view
//     (node.PartitionReassignments): Replicas (the current replicas, then
//     those being added), AddingReplicas, RemovingReplicas.
//   - Topics null lists every move; otherwise only the requested
//     partitions that are moving (others, and unknown ones, are left out,
//     as Kafka does).
//
// Version notes: v0 is flexible.

const listPartitionReassignmentsKey = 46

func init() {
	register(API{Key: listPartitionReassignmentsKey, MinVersion: 0, MaxVersion: 0, Handler: handleListPartitionReassignments})
}

func handleListPartitionReassignments(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListPartitionReassignmentsRequest)
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	if !rc.authorizedCluster(kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	wanted := func(r node.Reassignment) bool {
		if req.Topics == nil {
			return true
		}
		for _, t := range req.Topics {
			if t.Topic == r.Topic && slices.Contains(t.Partitions, r.Partition) {
				return true
			}
		}
		return false
	}
	for _, r := range rc.Broker.Node.PartitionReassignments() { // sorted by topic, partition
		if !wanted(r) {
			continue
		}
		if len(resp.Topics) == 0 || resp.Topics[len(resp.Topics)-1].Topic != r.Topic {
			rt := kmsg.NewListPartitionReassignmentsResponseTopic()
			rt.Topic = r.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		rp.Partition, rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas = r.Partition, r.Replicas, r.Adding, r.Removing
		if rp.AddingReplicas == nil {
			rp.AddingReplicas = []int32{}
		}
		if rp.RemovingReplicas == nil {
			rp.RemovingReplicas = []int32{}
		}
		rt := &resp.Topics[len(resp.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return resp, nil
}
